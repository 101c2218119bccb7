//! Compiles `proto/*.proto` (Cube's own transcription of the BBS models) with
//! protox, a pure-Rust protobuf compiler, so building needs no `protoc`, and
//! prost-build.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = "proto";
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
