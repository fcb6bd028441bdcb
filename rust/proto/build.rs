//! Generates the Rust types of `proto/lmsd/**/*.proto` into `OUT_DIR` with prost-build, using
//! the protoc shipped in `protoc-bin-vendored` (nothing to install besides cargo).

use std::path::{Path, PathBuf};

fn protos(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            protos(&path, out)?;
        } else if path.extension().is_some_and(|ext| ext == "proto") {
            out.push(path);
        }
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let contracts = root.join("lmsd");
    // relative to the package root, so that a target dir shared by several checkouts
    // (scripts/cargo-cached) watches this checkout's contracts, not those of the one that built
    println!("cargo:rerun-if-changed=../../proto/lmsd");
    let mut files = Vec::new();
    protos(&contracts, &mut files)?;
    files.sort();
    prost_build::Config::new()
        .protoc_executable(protoc_bin_vendored::protoc_bin_path()?)
        .compile_protos(&files, &[root, protoc_bin_vendored::include_path()?])?;
    Ok(())
}
