//! The content under `content/` is bundled into the binary (`include_dir!`), which cannot tell
//! Cargo that those files are inputs: this does, so an edited file is bundled again.

fn main() {
    println!("cargo:rerun-if-changed=content");
}
