//! Generates the prost types from `proto/`, with a vendored `protoc` so no system package is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc);
    config.compile_protos(&["proto/stockflight/v1/availability.proto"], &["proto"])?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
