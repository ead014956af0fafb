//! TLS (`--tls-cert`, `--tls-key`): rustls, terminated in each connection's own task *above* the
//! byte counters, so the counted bytes are TLS records as a network capture sees them (handshakes
//! included), and everything above it (limits, HTTP, WebSocket) sees plain text.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsAcceptor;

pub use pushpoll_wire::tls::MaybeTls;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the certificate chain --tls-cert {path}: {reason}")]
    Cert { path: PathBuf, reason: String },
    #[error("cannot read the private key --tls-key {path}: {reason}")]
    Key { path: PathBuf, reason: String },
    #[error("--tls-cert and --tls-key must be given together")]
    Half,
    #[error("the certificate and key do not make a TLS server: {0}")]
    Config(#[from] rustls::Error),
}

/// The acceptor for `--tls-cert`/`--tls-key`, or `None` when neither is given (plain HTTP).
pub fn acceptor(cert: Option<&Path>, key: Option<&Path>) -> Result<Option<TlsAcceptor>, TlsError> {
    let (cert, key) = match (cert, key) {
        (None, None) => return Ok(None),
        (Some(c), Some(k)) => (c, k),
        _ => return Err(TlsError::Half),
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError::Cert {
            path: cert.to_path_buf(),
            reason: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::Cert {
            path: cert.to_path_buf(),
            reason: "no PEM certificate in it".into(),
        });
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Key {
        path: key.to_path_buf(),
        reason: e.to_string(),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Some(TlsAcceptor::from(Arc::new(config))))
}

/// How long a TLS handshake may take when `--header-timeout` is off.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The accepted stream, through the TLS handshake when `acceptor` is set; `None` when the
/// handshake failed or took longer than `timeout` (the header timeout: the client's first bytes).
pub async fn open<S>(
    acceptor: Option<&TlsAcceptor>,
    stream: S,
    timeout: Option<Duration>,
) -> Option<MaybeTls<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let Some(acceptor) = acceptor else {
        return Some(MaybeTls::Plain(stream));
    };
    let timeout = timeout.unwrap_or(HANDSHAKE_TIMEOUT);
    match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => Some(MaybeTls::Tls(Box::new(tokio_rustls::TlsStream::Server(
            tls,
        )))),
        Ok(Err(e)) => {
            tracing::debug!("TLS handshake failed: {e}");
            None
        }
        Err(_) => {
            tracing::debug!("TLS handshake took longer than {timeout:?}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_or_neither() {
        assert!(matches!(acceptor(None, None), Ok(None)));
        let err = acceptor(Some(Path::new("c.pem")), None).err();
        assert!(matches!(err, Some(TlsError::Half)));
        let err = acceptor(
            Some(Path::new("/nonexistent/c.pem")),
            Some(Path::new("k.pem")),
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(err.contains("--tls-cert /nonexistent/c.pem"), "{err}");
    }
}
