//! Compiles the Flight service description into a descriptor set for gRPC server reflection,
//! with a vendored `protoc` so no system package is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    let include = protoc_bin_vendored::include_path()?;
    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc);
    config.file_descriptor_set_path(out.join("flight_descriptor.bin"));
    config.compile_protos(
        &["proto/flight_service.proto"],
        &[std::path::Path::new("proto"), include.as_path()],
    )?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
