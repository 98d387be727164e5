//! The `[http]` table: how long the node waits for a client's bytes, how many
//! connections it serves at once, and how many failed logins it accepts.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ConfigError;
use super::duration::serde_duration;

/// Limits of the HTTP server and of login attempts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// A request's head (line and headers) must arrive within this; it also closes
    /// a kept-alive connection that sends no new request for this long.
    #[serde(with = "serde_duration")]
    pub header_timeout: Duration,
    /// A request body that sends no byte for this long fails and its connection
    /// closes. An idle time, not a total: a large upload may stream for hours.
    #[serde(with = "serde_duration")]
    pub body_idle_timeout: Duration,
    /// Connections served at once; further ones wait in the listen queue.
    pub max_connections: usize,
    /// Failed logins one client address may make in a burst (any accounts).
    pub login_address_burst: u32,
    /// An address regains one failed login per this time.
    #[serde(with = "serde_duration")]
    pub login_address_refill: Duration,
    /// Failed logins for one account from one address in a burst.
    pub login_account_burst: u32,
    /// An (account, address) pair regains one failed login per this time.
    #[serde(with = "serde_duration")]
    pub login_account_refill: Duration,
}

impl Default for HttpConfig {
    fn default() -> HttpConfig {
        HttpConfig {
            header_timeout: Duration::from_secs(30),
            body_idle_timeout: Duration::from_secs(60),
            max_connections: 1024,
            login_address_burst: 30,
            login_address_refill: Duration::from_secs(2),
            login_account_burst: 10,
            login_account_refill: Duration::from_secs(6),
        }
    }
}

impl HttpConfig {
    /// Refuses limits that would stop the node from serving anyone.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let key = |field: &str| format!("http.{field}");
        for (field, value) in [
            ("header_timeout", self.header_timeout),
            ("body_idle_timeout", self.body_idle_timeout),
            ("login_address_refill", self.login_address_refill),
            ("login_account_refill", self.login_account_refill),
        ] {
            if value.is_zero() {
                return Err(ConfigError::invalid(key(field), "must be above 0"));
            }
        }
        for (field, value) in [
            ("max_connections", self.max_connections),
            ("login_address_burst", self.login_address_burst as usize),
            ("login_account_burst", self.login_account_burst as usize),
        ] {
            if value == 0 {
                return Err(ConfigError::invalid(key(field), "must be above 0"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn defaults_and_overrides() {
        let config = Config::from_toml("").unwrap();
        assert_eq!(config.http, super::HttpConfig::default());
        let config =
            Config::from_toml("[http]\nbody_idle_timeout = \"5s\"\nmax_connections = 8\n").unwrap();
        assert_eq!(config.http.body_idle_timeout.as_secs(), 5);
        assert_eq!(config.http.max_connections, 8);
        assert_eq!(config.http.header_timeout.as_secs(), 30);
        let error = Config::from_toml("[http]\nmax_connections = 0\n").unwrap_err();
        assert!(
            error.to_string().contains("http.max_connections"),
            "{error}"
        );
    }
}
