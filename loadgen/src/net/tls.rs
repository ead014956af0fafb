//! TLS for `https://` targets: rustls over the *counted* TCP stream, so the bytes counted are TLS
//! records (handshakes, record headers and tags included), as a network capture sees them.
//!
//! Trust: the system's root certificates, or only `--ca-cert FILE` when given (a private CA, as
//! `curl --cacert`); `--insecure` (by that name only) skips verification and is reported loudly.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsConnector;

pub use crate::scenario::access::TlsTrust;

#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("cannot read --ca-cert {path}: {reason}")]
    CaCert { path: PathBuf, reason: String },
    #[error("--ca-cert {path} holds no usable CA certificate: {reason}")]
    BadCa { path: PathBuf, reason: String },
    #[error("no system root certificates could be loaded{0}; pass --ca-cert FILE")]
    NoRoots(String),
    #[error("`{0}` is not a name or address a TLS certificate can be checked against")]
    Name(String),
    #[error("cannot set up TLS: {0}")]
    Rustls(#[from] rustls::Error),
}

/// A ready TLS client for one target host.
#[derive(Clone)]
pub struct TlsClient {
    connector: TlsConnector,
    name: ServerName<'static>,
    /// False under `--insecure`.
    pub verified: bool,
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsClient")
            .field("name", &self.name)
            .field("verified", &self.verified)
            .finish()
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl TlsClient {
    /// A client for `host` (as written in the target URL) under `trust`.
    pub fn new(host: &str, trust: &TlsTrust) -> Result<TlsClient, TlsSetupError> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(bare.to_string())
            .map_err(|_| TlsSetupError::Name(host.to_string()))?;
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?;
        let mut config = if trust.insecure {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerification(provider())))
                .with_no_client_auth()
        } else {
            let roots = match &trust.ca_cert {
                Some(path) => private_roots(path)?,
                None => system_roots()?,
            };
            builder.with_root_certificates(roots).with_no_client_auth()
        };
        // WebSocket upgrades and the generator's connections are HTTP/1.1.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsClient {
            connector: TlsConnector::from(Arc::new(config)),
            name,
            verified: !trust.insecure,
        })
    }

    /// The TLS handshake over `stream` (already counted: the handshake's bytes are counted).
    pub async fn connect<S>(&self, stream: S) -> io::Result<tokio_rustls::client::TlsStream<S>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        self.connector.connect(self.name.clone(), stream).await
    }
}

fn private_roots(path: &Path) -> Result<RootCertStore, TlsSetupError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|c| c.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsSetupError::CaCert {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    let bad = |reason: String| TlsSetupError::BadCa {
        path: path.to_path_buf(),
        reason,
    };
    if certs.is_empty() {
        return Err(bad("no PEM certificate in it".into()));
    }
    let mut roots = RootCertStore::empty();
    for cert in certs {
        roots.add(cert).map_err(|e| bad(e.to_string()))?;
    }
    Ok(roots)
}

fn system_roots() -> Result<RootCertStore, TlsSetupError> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        let why = found
            .errors
            .first()
            .map(|e| format!(" ({e})"))
            .unwrap_or_default();
        return Err(TlsSetupError::NoRoots(why));
    }
    Ok(roots)
}

/// `--insecure`: accepts any certificate (signatures are still checked, so the handshake is real
/// TLS with the same cost; only the identity is not).
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_ca_file_names_the_flag_and_path() {
        let trust = TlsTrust {
            ca_cert: Some("/nonexistent/ca.pem".into()),
            insecure: false,
        };
        let err = TlsClient::new("localhost", &trust).expect_err("missing file");
        assert!(
            err.to_string().contains("--ca-cert /nonexistent/ca.pem"),
            "{err}"
        );
    }

    #[test]
    fn insecure_needs_no_roots_and_says_so() {
        let trust = TlsTrust {
            ca_cert: None,
            insecure: true,
        };
        let client = TlsClient::new("127.0.0.1", &trust).expect("client");
        assert!(!client.verified);
    }
}
