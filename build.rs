//! Compiles the gRPC contracts in `proto/` with protox (pure Rust: no protoc on the machine).
use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = ["proto/frontline/dialog/v1/dialog.proto", "proto/frontline/ops/v1/ops.proto"];
    let fds = protox::compile(protos, ["proto"])?;
    // Server reflection (grpcurl) serves the contracts from this encoded descriptor set.
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out_dir.join("frontline_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(fds)?;
    for p in protos {
        println!("cargo:rerun-if-changed={p}");
    }
    Ok(())
}
