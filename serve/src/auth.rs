//! Who may call the gRPC port: clients with a certificate from the client CA whose name is on the
//! allow-list (mutual TLS, the default posture), or, by an explicit choice logged loudly, anyone.
//!
//! A caller's verified name is part of every workload's identity in the [`crate::scaler`], so one
//! client can neither read nor replace the state another client's calls built.

use std::path::PathBuf;
use std::time::Duration;
use tonic::Status;

/// How callers of the gRPC port are authenticated.
#[derive(Debug, Clone, Default)]
pub enum Auth {
    /// Nothing chosen: the server refuses to start.
    #[default]
    Unset,
    /// Mutual TLS with an allow-list of client names.
    MutualTls(Tls),
    /// Plain gRPC and every caller trusted (`--insecure`): only where nothing untrusted can reach
    /// the port.
    Insecure,
}

/// The files and names of mutual TLS (`tls` in the config file, `--tls-*` flags).
#[derive(Debug, Clone)]
pub struct Tls {
    /// The server's certificate chain (PEM).
    pub cert: PathBuf,
    /// The server's private key (PEM).
    pub key: PathBuf,
    /// The CA that signs the clients' certificates (PEM).
    pub client_ca: PathBuf,
    /// Client names allowed to call: a DNS or URI subject alternative name, or the common name,
    /// of the client's certificate.
    pub allowed_clients: Vec<String>,
    /// Longest a TLS handshake may take before the connection is dropped.
    pub handshake_timeout: Duration,
}

/// Why TLS could not be set up; names the file or field.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No authentication was chosen.
    #[error(
        "no client authentication: set `tls` (certFile, keyFile, clientCaFile, allowedClients) in \
         the config file or the --tls-cert, --tls-key, --client-ca and --allow-client flags; \
         --insecure accepts any caller without TLS"
    )]
    Unset,
    /// A certificate or key file does not load.
    #[error("{field} {path}: {message}")]
    File {
        /// The config field.
        field: &'static str,
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The allow-list is empty.
    #[error("tls.allowedClients is empty: name the clients (KEDA's certificate) that may call")]
    NoClients,
}

/// A caller, as verified: its allowed name under mutual TLS, empty when every caller is trusted.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Caller(pub String);

impl Auth {
    /// The gRPC server's TLS, reloaded as its files change: `None` for [`Auth::Insecure`]; an
    /// error when nothing is chosen or a file does not load.
    pub fn server_tls(&self) -> Result<Option<std::sync::Arc<crate::tls::Reloading>>, AuthError> {
        let tls = match self {
            Auth::Unset => return Err(AuthError::Unset),
            Auth::Insecure => return Ok(None),
            Auth::MutualTls(tls) => tls,
        };
        if tls.allowed_clients.is_empty() {
            return Err(AuthError::NoClients);
        }
        Ok(Some(std::sync::Arc::new(crate::tls::Reloading::new(tls)?)))
    }

    /// The verified caller of `request`: PermissionDenied for a certificate whose names are not
    /// allowed, Unauthenticated for a call without one.
    pub fn caller<T>(&self, request: &tonic::Request<T>) -> Result<Caller, Status> {
        let allowed = match self {
            Auth::MutualTls(tls) => &tls.allowed_clients,
            Auth::Insecure | Auth::Unset => return Ok(Caller::default()),
        };
        // rustls has checked the chain up to the client CA; what is left is the name.
        let certs = request
            .peer_certs()
            .ok_or_else(|| Status::unauthenticated("a client certificate is required"))?;
        let leaf = certs
            .first()
            .ok_or_else(|| Status::unauthenticated("a client certificate is required"))?;
        let names = names(leaf.as_ref());
        match names.iter().find(|n| allowed.contains(n)) {
            Some(name) => Ok(Caller(name.clone())),
            None => Err(Status::permission_denied(format!(
                "the client certificate's names ({}) are not in tls.allowedClients",
                shown(&names)
            ))),
        }
    }
}

/// The names a certificate stands for: its DNS and URI subject alternative names or, only when
/// it has no subject alternative name extension at all, its common names (RFC 6125 6.4.4: a
/// present SAN replaces the CN, so a CA that puts a name in the CN alone cannot grant it); none
/// when it does not parse.
pub fn names(der: &[u8]) -> Vec<String> {
    use x509_parser::extensions::GeneralName;
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
        return Vec::new();
    };
    let mut names = Vec::new();
    match cert.subject_alternative_name() {
        Ok(Some(san)) => {
            for name in &san.value.general_names {
                match name {
                    GeneralName::DNSName(s) | GeneralName::URI(s) => names.push(s.to_string()),
                    _ => {}
                }
            }
            return names;
        }
        // A SAN extension that does not parse (or appears twice) grants nothing.
        Err(_) => return names,
        Ok(None) => {}
    }
    for cn in cert.subject().iter_common_name() {
        if let Ok(s) = cn.as_str() {
            names.push(s.to_string());
        }
    }
    names
}

/// Names for an error message: at most a few, each bounded, so a hostile certificate cannot
/// make the answer large.
fn shown(names: &[String]) -> String {
    if names.is_empty() {
        return "none".into();
    }
    let mut out: Vec<String> = names
        .iter()
        .take(4)
        .map(|n| crate::quota::shown(n))
        .collect();
    if names.len() > 4 {
        out.push(format!("{} more", names.len() - 4));
    }
    out.join(", ")
}
