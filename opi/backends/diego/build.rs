//! Compiles the BBS model subset in `proto/models` with protox (a pure-Rust
//! protobuf compiler, so no `protoc` is needed to build) and prost-build.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = "proto/models";
    println!("cargo:rerun-if-changed={dir}");
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|ext| ext == "proto") {
            println!("cargo:rerun-if-changed={}", path.display());
            files.push(path);
        }
    }
    files.sort();
    let descriptors = protox::compile(&files, [dir])?;
    prost_build::Config::new()
        // Ordered maps: deterministic encoding, byte-identical to other
        // deterministic encoders (the golden-vector test relies on it).
        .btree_map(["."])
        .compile_fds(descriptors)?;
    Ok(())
}
