//! The content under `content/` and the rules under `rules/` are bundled into the binary
//! (`include_dir!`), which cannot tell Cargo that those files are inputs: this does, so an
//! edited file is bundled again.

fn main() {
    println!("cargo:rerun-if-changed=content");
    println!("cargo:rerun-if-changed=rules");
}
