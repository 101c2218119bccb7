fn main() {
    eprintln!("cube-bench: no scenarios yet; see bench/README.md");
}
