//! The gRPC port's TLS: a rustls server configuration from the `tls` files (the server's
//! certificate and key, the clients' CA), built again when the files change, so that a renewed
//! certificate (cert-manager rewrites the Secret, the kubelet the mounted files) is served
//! without a restart. Each connection's handshake uses the configuration current when it arrives.

use crate::auth::{AuthError, Tls};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

/// How often the files are checked for a change.
pub const RELOAD_CHECK: Duration = Duration::from_secs(10);

/// Largest PEM file read: a certificate chain or key is a few KiB.
const PEM_BYTES: u64 = 1 << 20;

/// The current server configuration, and what it was built from.
pub struct Reloading {
    files: Tls,
    current: RwLock<(Stamp, Arc<rustls::ServerConfig>)>,
}

/// The three files' modification times and lengths: a change in any means a rebuild.
type Stamp = [(Option<SystemTime>, u64); 3];

impl Reloading {
    /// Builds the configuration from `files`; the error names the setting and file that fail.
    pub fn new(files: &Tls) -> Result<Reloading, AuthError> {
        let stamp = stamp(files);
        let config = build(files)?;
        Ok(Reloading {
            files: files.clone(),
            current: RwLock::new((stamp, config)),
        })
    }

    /// The configuration for a connection arriving now.
    pub fn config(&self) -> Arc<rustls::ServerConfig> {
        self.read().1.clone()
    }

    /// Builds the configuration again if a file changed since the last build. A change that
    /// does not build (a key written before its certificate, say) keeps the last good one and
    /// is tried again at the next check. `Ok(true)` when it reloaded.
    pub fn reload_if_changed(&self) -> Result<bool, AuthError> {
        let now = stamp(&self.files);
        if now == self.read().0 {
            return Ok(false);
        }
        let config = build(&self.files)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = (now, config);
        Ok(true)
    }

    /// Checks the files every [`RELOAD_CHECK`] until the process ends, logging each reload and
    /// each failed one (once per change).
    pub fn watch(self: Arc<Self>) {
        tokio::spawn(async move {
            let mut failed: Option<Stamp> = None;
            loop {
                tokio::time::sleep(RELOAD_CHECK).await;
                match self.reload_if_changed() {
                    Ok(true) => {
                        failed = None;
                        tracing::info!("tls: certificate files changed, reloaded");
                    }
                    Ok(false) => {}
                    Err(e) => {
                        let now = stamp(&self.files);
                        if failed != Some(now) {
                            tracing::warn!(error = %e, "tls: changed files do not load; serving the previous certificate");
                            failed = Some(now);
                        }
                    }
                }
            }
        });
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, (Stamp, Arc<rustls::ServerConfig>)> {
        self.current.read().unwrap_or_else(|p| p.into_inner())
    }
}

fn stamp(files: &Tls) -> Stamp {
    [&files.cert, &files.key, &files.client_ca]
        .map(|path| std::fs::metadata(path).map_or((None, 0), |m| (m.modified().ok(), m.len())))
}

/// The server configuration: the certificate and key, clients verified against the CA (a
/// certificate is required), HTTP/2 by ALPN as gRPC speaks it.
fn build(files: &Tls) -> Result<Arc<rustls::ServerConfig>, AuthError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain: Vec<CertificateDer<'static>> = certs("tls.certFile", &files.cert)?;
    let key_pem = read_pem("tls.keyFile", &files.key)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| fail("tls.keyFile", &files.key, e.to_string()))?;
    let mut roots = rustls::RootCertStore::empty();
    for ca in certs("tls.clientCaFile", &files.client_ca)? {
        roots
            .add(ca)
            .map_err(|e| fail("tls.clientCaFile", &files.client_ca, e.to_string()))?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| fail("tls.clientCaFile", &files.client_ca, e.to_string()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| fail("tls", &files.cert, e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| fail("tls.certFile", &files.cert, e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

fn certs(field: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, AuthError> {
    let pem = read_pem(field, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(field, path, e.to_string()))?;
    if certs.is_empty() {
        return Err(fail(field, path, "no certificate in it".into()));
    }
    Ok(certs)
}

fn fail(field: &'static str, path: &Path, message: String) -> AuthError {
    AuthError::File {
        field,
        path: path.display().to_string(),
        message,
    }
}

/// A PEM file, bounded in size and checked to be PEM.
pub fn read_pem(field: &'static str, path: &Path) -> Result<Vec<u8>, AuthError> {
    let meta = std::fs::metadata(path).map_err(|e| fail(field, path, e.to_string()))?;
    if !meta.is_file() {
        return Err(fail(field, path, "not a regular file".into()));
    }
    if meta.len() > PEM_BYTES {
        return Err(fail(
            field,
            path,
            format!(
                "{} bytes, over the {PEM_BYTES} a PEM file may have",
                meta.len()
            ),
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| fail(field, path, e.to_string()))?;
    if !bytes.windows(10).any(|w| w == b"-----BEGIN") {
        return Err(fail(field, path, "not PEM (no -----BEGIN line)".into()));
    }
    Ok(bytes)
}
