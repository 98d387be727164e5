//! The `[tls]` table: the node's certificate and key (HTTPS instead of HTTP), and
//! the certificate authorities it trusts, beside the system's, when it calls
//! peers over HTTPS.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// HTTPS settings. Paths relative to the data directory are taken from it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM certificate chain the node serves HTTPS with (its own certificate
    /// first). With `key_file`; without both, the node serves plain HTTP.
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file` (PKCS#8, PKCS#1 or SEC1).
    pub key_file: Option<PathBuf>,
    /// PEM certificates of authorities trusted for peers' HTTPS, in addition to
    /// the system's roots (for example the CA that `quire tls init` made).
    pub ca_file: Option<PathBuf>,
}

impl TlsConfig {
    /// Whether the node serves HTTPS.
    pub fn serves_https(&self) -> bool {
        self.cert_file.is_some()
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        match (&self.cert_file, &self.key_file) {
            (Some(_), None) => Err(ConfigError::invalid(
                "tls.key_file",
                "is needed with tls.cert_file (the certificate's private key)",
            )),
            (None, Some(_)) => Err(ConfigError::invalid(
                "tls.cert_file",
                "is needed with tls.key_file (the certificate the key belongs to)",
            )),
            _ => Ok(()),
        }
    }
}
