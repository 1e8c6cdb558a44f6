//! Compiles the gRPC contracts in `proto/` with protox (pure Rust: no protoc on the machine).
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = ["proto/frontline/dialog/v1/dialog.proto"];
    let fds = protox::compile(protos, ["proto"])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(fds)?;
    for p in protos {
        println!("cargo:rerun-if-changed={p}");
    }
    Ok(())
}
