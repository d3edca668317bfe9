//! How the scaler reaches Prometheus: TLS (the CAs it trusts, a client certificate) and what it
//! sends with each call (a bearer token or basic auth read from files, extra headers such as
//! Mimir's, Cortex's and Thanos' `X-Scope-OrgID`). Secrets are read from files, re-read when
//! they rotate, and never logged: [`Access`]'s `Debug` names files, not contents.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hyper::header::{HeaderName, HeaderValue, AUTHORIZATION};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often a secret file is read again at most: a rotated Kubernetes Secret or projected token
/// reaches the pod's files within about a minute, so a few seconds' staleness costs nothing,
/// and thousands of calls a second do not each read a file.
pub const SECRET_RELOAD: Duration = Duration::from_secs(5);

/// What the scaler presents to Prometheus, from the config's `prometheus` section or flags.
#[derive(Clone, Default, PartialEq)]
pub struct Access {
    /// PEM file of the CAs to trust for an `https` URL, instead of the built-in Mozilla roots.
    pub ca_file: Option<PathBuf>,
    /// PEM files of a client certificate and its key, for a Prometheus that asks for one.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// File holding a bearer token, sent as `Authorization: Bearer`.
    pub bearer_token_file: Option<PathBuf>,
    /// Basic auth: the user name and a file holding the password.
    pub basic_auth: Option<(String, PathBuf)>,
    /// Headers sent on every call, by name.
    pub headers: Vec<(String, String)>,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Header values may be credentials of their own: only names are shown.
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("Access")
            .field("ca_file", &self.ca_file)
            .field("client_cert", &self.client_cert)
            .field("bearer_token_file", &self.bearer_token_file)
            .field("basic_auth", &self.basic_auth.as_ref().map(|(u, p)| (u, p)))
            .field("headers", &names)
            .finish()
    }
}

/// Access settings that cannot work; names the setting and the file.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AccessError {
    /// A file that does not read or parse.
    #[error("prometheus.{field} `{path}`: {message}")]
    File {
        /// The setting, as in the config file.
        field: &'static str,
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// Settings that contradict each other or are malformed.
    #[error("prometheus: {0}")]
    Invalid(String),
}

impl Access {
    /// Whether any credential is sent (token, password, or a header).
    pub fn sends_credentials(&self) -> bool {
        self.bearer_token_file.is_some() || self.basic_auth.is_some()
    }

    /// Checks the settings and builds what a client needs: the HTTP(S) connector and the headers
    /// of each call. Files are read now, so a wrong path fails at start, not at the first query.
    pub fn build(&self, connect_timeout: Duration) -> Result<Built, AccessError> {
        if self.bearer_token_file.is_some() && self.basic_auth.is_some() {
            return Err(AccessError::Invalid(
                "bearerTokenFile and basicAuth are both set: Prometheus takes one Authorization \
                 header"
                    .into(),
            ));
        }
        let mut headers = Vec::with_capacity(self.headers.len());
        for (name, value) in &self.headers {
            let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                AccessError::Invalid(format!("headers: `{name}` is not a header name"))
            })?;
            if header == AUTHORIZATION {
                return Err(AccessError::Invalid(
                    "headers: set Authorization by bearerTokenFile or basicAuth, read from a \
                     file rather than written in the config"
                        .into(),
                ));
            }
            let value = HeaderValue::from_str(value).map_err(|_| {
                AccessError::Invalid(format!("headers.{name}: not a valid header value"))
            })?;
            headers.push((header, value));
        }
        let authorization = match (&self.bearer_token_file, &self.basic_auth) {
            (Some(path), _) => Some(Credential::new(path, "bearerTokenFile", None)?),
            (_, Some((user, path))) => Some(Credential::new(
                path,
                "basicAuth.passwordFile",
                Some(user.clone()),
            )?),
            _ => None,
        };
        Ok(Built {
            connector: self.connector(connect_timeout)?,
            headers,
            authorization,
        })
    }

    fn connector(&self, timeout: Duration) -> Result<HttpsConnector<HttpConnector>, AccessError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        match &self.ca_file {
            Some(path) => {
                let certs = read_certs(path, "caFile")?;
                for cert in certs {
                    roots.add(cert).map_err(|e| file_error("caFile", path, e))?;
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| AccessError::Invalid(format!("TLS: {e}")))?
            .with_root_certificates(roots);
        let tls = match &self.client_cert {
            Some((cert, key)) => {
                let chain = read_certs(cert, "certFile")?;
                let key =
                    PrivateKeyDer::from_pem_file(key).map_err(|e| file_error("keyFile", key, e))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| file_error("certFile", cert, e))?
            }
            None => builder.with_no_client_auth(),
        };
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(timeout));
        // hyper's connector refuses https URLs unless told to let them through to TLS.
        http.enforce_http(false);
        Ok(hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http))
    }
}

fn file_error(field: &'static str, path: &Path, e: impl std::fmt::Display) -> AccessError {
    AccessError::File {
        field,
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

fn read_certs(
    path: &Path,
    field: &'static str,
) -> Result<Vec<CertificateDer<'static>>, AccessError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_error(field, path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(field, path, e))?;
    if certs.is_empty() {
        return Err(file_error(field, path, "no PEM certificate in it"));
    }
    Ok(certs)
}

/// What a client built from [`Access`] adds to each call.
pub struct Built {
    /// Connects over TLS for `https` URLs and plainly for `http` ones.
    pub connector: HttpsConnector<HttpConnector>,
    headers: Vec<(HeaderName, HeaderValue)>,
    authorization: Option<Credential>,
}

impl Built {
    /// The secrets a call sends, in every form an answer could echo them (the header value, the
    /// token or base64 credentials after the scheme, and basic auth's `user:password` and
    /// password), for [`redact`] to remove from text that is logged or returned.
    pub fn secrets(&self) -> Vec<String> {
        let Some(c) = &self.authorization else {
            return Vec::new();
        };
        let current = c.current.lock().unwrap_or_else(|p| p.into_inner());
        let Ok(value) = current.1.to_str() else {
            return Vec::new();
        };
        let mut secrets = vec![value.to_string()];
        if let Some((_, token)) = value.split_once(' ') {
            secrets.push(token.to_string());
            if let Some(decoded) = STANDARD
                .decode(token)
                .ok()
                .and_then(|d| String::from_utf8(d).ok())
            {
                if let Some((_, password)) = decoded.split_once(':') {
                    secrets.push(password.to_string());
                }
                secrets.push(decoded);
            }
        }
        // Longest first, so that a secret containing another is removed whole.
        secrets.retain(|s| s.len() >= 4);
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets
    }

    /// The headers of a call: the extra ones, and `Authorization` from the current secret.
    pub fn headers(&self) -> Result<Vec<(HeaderName, HeaderValue)>, AccessError> {
        let mut out = self.headers.clone();
        if let Some(c) = &self.authorization {
            out.push((AUTHORIZATION, c.header()?));
        }
        Ok(out)
    }
}

/// A secret read from a file, kept for [`SECRET_RELOAD`] and read again after.
struct Credential {
    path: PathBuf,
    field: &'static str,
    /// For basic auth, the user name; for a bearer token, `None`.
    user: Option<String>,
    current: Mutex<(Instant, HeaderValue)>,
}

impl Credential {
    fn new(
        path: &Path,
        field: &'static str,
        user: Option<String>,
    ) -> Result<Credential, AccessError> {
        let mut c = Credential {
            path: path.to_path_buf(),
            field,
            user,
            current: Mutex::new((Instant::now(), HeaderValue::from_static(""))),
        };
        let value = c.read()?;
        c.current = Mutex::new((Instant::now(), value));
        Ok(c)
    }

    /// The header from the file as it is now.
    fn read(&self) -> Result<HeaderValue, AccessError> {
        let text = std::fs::read_to_string(&self.path)
            .map_err(|e| file_error(self.field, &self.path, e))?;
        // Files written by `echo` or editors end in a newline that is not part of the secret.
        let secret = text.trim_end_matches(['\n', '\r']);
        if secret.is_empty() {
            return Err(file_error(self.field, &self.path, "the file is empty"));
        }
        let value = match &self.user {
            None => format!("Bearer {secret}"),
            Some(user) => format!("Basic {}", STANDARD.encode(format!("{user}:{secret}"))),
        };
        let mut value = HeaderValue::from_str(&value)
            .map_err(|_| file_error(self.field, &self.path, "not valid in an HTTP header"))?;
        value.set_sensitive(true);
        Ok(value)
    }

    /// The header, read again when the last read is older than [`SECRET_RELOAD`]. A file that no
    /// longer reads is an error (the last secret may be the revoked one).
    fn header(&self) -> Result<HeaderValue, AccessError> {
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if current.0.elapsed() >= SECRET_RELOAD {
            *current = (Instant::now(), self.read()?);
        }
        Ok(current.1.clone())
    }
}

/// `text` with every one of `secrets` replaced by `<redacted>`.
pub fn redact(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for secret in secrets {
        if out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), "<redacted>");
        }
    }
    out
}

/// The URL without what it says of a user (`user:password@`), for messages; `None` when it has
/// none. Such a URL is refused: hyper would not send those credentials, and the URL is logged.
pub fn userinfo_removed(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let (_, host) = authority.rsplit_once('@')?;
    Some(format!("{scheme}://{host}{path}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_files_and_header_names_never_values() {
        let access = Access {
            bearer_token_file: Some("/var/run/secrets/token".into()),
            headers: vec![("X-Scope-OrgID".into(), "tenant-secret-name".into())],
            ..Access::default()
        };
        let text = format!("{access:?}");
        assert!(text.contains("/var/run/secrets/token") && text.contains("X-Scope-OrgID"));
        assert!(!text.contains("tenant-secret-name"), "{text}");
    }

    #[test]
    fn contradictions_and_bad_headers_are_refused_naming_the_setting() {
        let both = Access {
            bearer_token_file: Some("t".into()),
            basic_auth: Some(("u".into(), "p".into())),
            ..Access::default()
        };
        let e = both.build(Duration::from_secs(1)).err().unwrap();
        assert!(
            e.to_string().contains("bearerTokenFile and basicAuth"),
            "{e}"
        );
        for (name, value, says) in [
            ("Authorization", "Bearer x", "Authorization"),
            ("bad name", "x", "`bad name` is not a header name"),
            ("X-Scope-OrgID", "a\nb", "headers.X-Scope-OrgID"),
        ] {
            let access = Access {
                headers: vec![(name.into(), value.into())],
                ..Access::default()
            };
            let e = access.build(Duration::from_secs(1)).err().unwrap();
            assert!(e.to_string().contains(says), "{name}: {e}");
        }
        let missing = Access {
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..Access::default()
        };
        let e = missing.build(Duration::from_secs(1)).err().unwrap();
        assert!(
            e.to_string()
                .starts_with("prometheus.caFile `/nonexistent/ca.pem`"),
            "{e}"
        );
    }
}
