//! The Ops gRPC service (`proto/frontline/ops/v1/ops.proto`): ops teams and monitoring systems
//! watch and steer the gateway. Live calls, their events, stats, and control (hang up, hand
//! over, speak a line, drain) on one port (50051 by default), with the gRPC health service and
//! server reflection (v1 and v1alpha, so grpcurl 1.8 works) beside it.
//!
//! Access: every Ops call needs a bearer token ([`auth`]); health and reflection stay open
//! because probes and discovery carry no call data. TLS is optional (PEM files in `[ops]`).

mod auth;
mod convert;
mod service;

pub use auth::BearerAuth;
pub use service::OpsService;

use crate::call::CallServices;
use crate::speech::config::SpeechConfig;
use crate::proto::ops::ops_server::OpsServer;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio_stream::wrappers::TcpListenerStream;

/// The `[ops]` section of the config file.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct OpsConfig {
    /// Address the Ops gRPC service listens on. Port 0 picks a free port.
    pub listen: SocketAddr,
    /// Bearer tokens accepted on Ops calls; FRONTLINE_OPS_TOKEN adds one.
    pub tokens: Vec<String>,
    /// TLS certificate chain and private key (PEM). Both or neither.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// The URL other gateways sharing the records database reach this Ops service at, to
    /// forward controls for this node's calls. Empty: http(s)://<listen address, or the host
    /// name when it listens on every address>:<bound port>.
    pub advertise: String,
}

impl Default for OpsConfig {
    fn default() -> Self {
        OpsConfig {
            listen: "0.0.0.0:50051".parse().expect("literal address"),
            tokens: Vec::new(),
            tls_cert: None,
            tls_key: None,
            advertise: String::new(),
        }
    }
}

impl OpsConfig {
    /// `(key, message)` for the first problem found.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(("ops.tls_cert", "set both tls_cert and tls_key (PEM files), or neither for plaintext".into()));
        }
        if let Some(t) = self.tokens.iter().find(|t| t.trim().is_empty() || t.chars().any(char::is_whitespace)) {
            return Err(("ops.tokens", format!("{t:?}: a token must be non-empty and without spaces")));
        }
        if !self.advertise.is_empty() && !(self.advertise.starts_with("http://") || self.advertise.starts_with("https://")) {
            return Err(("ops.advertise", format!("{:?}: use http://host:port or https://host:port, or leave it empty", self.advertise)));
        }
        Ok(())
    }

    /// Where other gateways reach this Ops service (see `advertise`).
    pub fn advertised_url(&self, serving: &OpsServing) -> String {
        if !self.advertise.is_empty() {
            return self.advertise.clone();
        }
        let scheme = if serving.tls { "https" } else { "http" };
        let host = if serving.addr.ip().is_unspecified() {
            crate::records::host_name().unwrap_or_else(|| "localhost".into())
        } else {
            serving.addr.ip().to_string()
        };
        let host = if host.contains(':') { format!("[{host}]") } else { host };
        format!("{scheme}://{host}:{}", serving.addr.port())
    }
}

/// Says, every `interval`, that this node is alive, how many calls it has, whether it is
/// draining and how many bridged calls it gave each SIP agent, in the records database the
/// other gateways read (`records::RecordStore::heartbeat`); and reads back theirs, so
/// least-busy agent routing counts every node's calls.
pub fn spawn_heartbeat(services: Arc<CallServices>, ops_url: String, interval: std::time::Duration) -> tokio::task::JoinHandle<()> {
    let started_ms = crate::clock::now_ms();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let pool = services.agent_pool();
            let agent_load = pool.lock().unwrap_or_else(std::sync::PoisonError::into_inner).loads();
            services.records.heartbeat(crate::records::NodeBeat {
                ops_url: ops_url.clone(),
                started_ms,
                draining: services.is_draining(),
                active_calls: services.active_calls() as u32,
                agent_load,
            });
            if !services.records.is_shared() {
                continue;
            }
            let records = services.records.clone();
            match tokio::task::spawn_blocking(move || records.agent_load_elsewhere()).await {
                Ok(Ok(elsewhere)) => pool.lock().unwrap_or_else(std::sync::PoisonError::into_inner).set_elsewhere(elsewhere),
                Ok(Err(e)) => tracing::debug!(error = %e, "agent loads of the other nodes not read"),
                Err(_) => {}
            }
        }
    })
}

#[derive(Debug, thiserror::Error)]
pub enum OpsStartError {
    #[error("ops.tls_cert/ops.tls_key: cannot read {path}: {error} (point them at PEM files, or remove both for plaintext)")]
    TlsFile { path: PathBuf, error: std::io::Error },
    #[error("ops: TLS setup failed: {0} (check that ops.tls_cert and ops.tls_key are a matching PEM certificate and key)")]
    Tls(tonic::transport::Error),
    #[error("ops.listen: cannot listen on {addr}: {error} (another process has the port? --ops-port 0 picks a free one)")]
    Bind { addr: SocketAddr, error: std::io::Error },
    #[error("ops: reflection descriptors: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
}

/// The bound address, and whether it speaks TLS.
pub struct OpsServing {
    pub addr: SocketAddr,
    pub tls: bool,
    pub task: tokio::task::JoinHandle<()>,
}

/// Starts the Ops port: the Ops service behind the token check, health, reflection. `speech`
/// is what `GetStats` reports of the recognizer.
pub async fn serve(config: &OpsConfig, speech: &SpeechConfig, auth: BearerAuth, services: Arc<CallServices>) -> Result<OpsServing, OpsStartError> {
    let mut builder = tonic::transport::Server::builder();
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => {
            let read = |path: &PathBuf| std::fs::read(path).map_err(|error| OpsStartError::TlsFile { path: path.clone(), error });
            let identity = tonic::transport::Identity::from_pem(read(cert)?, read(key)?);
            builder = builder
                .tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))
                .map_err(OpsStartError::Tls)?;
            true
        }
        _ => false,
    };
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_service_status(OPS_SERVICE, tonic_health::ServingStatus::Serving).await;
    // The whole server's health ("") follows the drain, however it started (SIGTERM, SIGINT or
    // SetDraining): a load balancer's health check stops sending calls; Ops keeps serving.
    let mut drain = services.drain_watch();
    let reporter = health.clone();
    tokio::spawn(async move {
        loop {
            let serving = *drain.borrow_and_update() == crate::call::Drain::Serving;
            let status = if serving { tonic_health::ServingStatus::Serving } else { tonic_health::ServingStatus::NotServing };
            reporter.set_service_status("", status).await;
            if drain.changed().await.is_err() {
                return;
            }
        }
    });
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            // Only what this port serves: the Dialog contract in the same descriptor set
            // belongs to the brain's port.
            .with_service_name(OPS_SERVICE)
            .with_service_name("grpc.health.v1.Health")
            .with_service_name("grpc.reflection.v1.ServerReflection")
            .with_service_name("grpc.reflection.v1alpha.ServerReflection")
    };
    let reflection_v1 = reflection().build_v1()?;
    let reflection_v1alpha = reflection().build_v1alpha()?;
    let ops = OpsServer::with_interceptor(OpsService::new(services, speech.clone()), auth);

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|error| OpsStartError::Bind { addr: config.listen, error })?;
    let addr = listener.local_addr().map_err(|error| OpsStartError::Bind { addr: config.listen, error })?;
    let router = builder.add_service(health_service).add_service(reflection_v1).add_service(reflection_v1alpha).add_service(ops);
    let task = tokio::spawn(async move {
        if let Err(e) = router.serve_with_incoming(TcpListenerStream::new(listener)).await {
            tracing::error!(error = %e, "ops gRPC server stopped");
        }
    });
    Ok(OpsServing { addr, tls, task })
}

const OPS_SERVICE: &str = "frontline.ops.v1.Ops";
