//! TLS for hosted LLM APIs (DeepSeek, Qwen/DashScope, any https endpoint): rustls with the
//! ring provider, trusting Mozilla's root store (webpki-roots, compiled in) plus the
//! certificates of `brain.llm.ca_file` (a private CA, or a self-signed server).
//!
//! Why compiled-in roots rather than the system store: the gateway must behave the same in a
//! slim container without `ca-certificates` as on a full host, and a missing system store would
//! only surface as a certificate error on the first call. Sites with their own CA (a corporate
//! proxy, an on-premises vLLM) name it in `ca_file`, which is explicit and shows up in review.

use rustls::pki_types::{pem::PemObject, CertificateDer};
use rustls::{ClientConfig, RootCertStore};
use std::path::Path;
use std::sync::Arc;

/// Why the TLS settings cannot be used; the text says what to fix.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TlsSetupError(pub String);

/// The client configuration: Mozilla's roots, plus every certificate in `ca_file` when given.
pub fn client_config(ca_file: Option<&Path>) -> Result<ClientConfig, TlsSetupError> {
    let mut roots = RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    if let Some(path) = ca_file {
        for cert in read_certificates(path)? {
            roots
                .add(cert)
                .map_err(|e| TlsSetupError(format!("{}: a certificate in it is not usable as a trust anchor: {e}", path.display())))?;
        }
    }
    // The provider is named here rather than installed process-wide: rsipstack's TLS and this
    // client then cannot disagree about which provider is the default.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsSetupError(format!("TLS set-up failed: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

/// The certificates of a PEM file (other PEM sections, such as a key, are skipped).
fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let bytes = std::fs::read(path).map_err(|e| TlsSetupError(format!("cannot read {}: {e}", path.display())))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsSetupError(format!("{} is not a PEM certificate file: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(TlsSetupError(format!("{} holds no \"BEGIN CERTIFICATE\" block: give the CA certificate in PEM", path.display())));
    }
    Ok(certs)
}

/// True when a connection error is the server's certificate being rejected (unknown issuer,
/// wrong name, expired): the fix is then `ca_file` or the URL's host name, not the network.
pub fn is_certificate_error(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("invalid peer certificate") || m.contains("certificate verify") || m.contains("unknownissuer")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mozilla_roots_load_and_bad_ca_files_name_the_problem() {
        assert!(client_config(None).is_ok());
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        assert!(client_config(Some(&missing)).unwrap_err().0.contains("cannot read"));
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        assert!(client_config(Some(&empty)).unwrap_err().0.contains("BEGIN CERTIFICATE"));
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").unwrap();
        assert!(client_config(Some(&garbage)).is_err());
    }

    #[test]
    fn rejected_certificates_are_told_apart_from_network_errors() {
        assert!(is_certificate_error("client error (Connect): invalid peer certificate: UnknownIssuer"));
        assert!(!is_certificate_error("client error (Connect): tcp connect error: Connection refused"));
    }
}
