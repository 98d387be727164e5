//! Which node a client command talks to, and as whom.
//!
//! In order: `--url/--user/--password` (or `QUIRE_URL/QUIRE_USER/QUIRE_PASSWORD`);
//! a named connection of the Librarian client file (`--connection NAME`, read from
//! `$HL_CLIENT_CONFIG` or `~/.hl_client.cfg`); otherwise the local node of the data
//! directory (`--data-dir`, else `./quire-data`, else the `data_dir` of the node's
//! configuration file), using the address it listens on and its `admin-password`
//! file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;

use super::failure::Failure;
use crate::config::{Config, DEFAULT_DATA_DIR, DEFAULT_LISTEN, PACKAGED_CONFIG};
use crate::node::{ADMIN_PASSWORD_FILE, ADMIN_USER, CA_CERT_FILE, LISTEN_ADDRESS_FILE, TLS_DIR};
use crate::peer::{Connection, LibrarianClient};

/// How long a request may stay silent before the client gives up.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(600);

/// Options that choose the node and the account.
#[derive(Debug, Clone, Args)]
pub struct ConnectionArgs {
    /// Base URL of the node, e.g. http://data.example.org:21108.
    #[arg(long, env = "QUIRE_URL", global = true, value_name = "URL")]
    pub url: Option<String>,
    /// Account name [default: admin].
    #[arg(long, env = "QUIRE_USER", global = true, value_name = "NAME")]
    pub user: Option<String>,
    /// Account password [default: the local node's admin-password file].
    #[arg(
        long,
        env = "QUIRE_PASSWORD",
        global = true,
        value_name = "PASSWORD",
        hide_env_values = true
    )]
    pub password: Option<String>,
    /// A named connection from the Librarian client file ($HL_CLIENT_CONFIG or
    /// ~/.hl_client.cfg).
    #[arg(long, short = 'c', global = true, value_name = "NAME")]
    pub connection: Option<String>,
    /// Data directory of the local node to use when no URL or connection is given.
    #[arg(long, env = "QUIRE_DATA_DIR", global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// PEM certificates of authorities to trust for https URLs, beside the
    /// system's (the local node's `tls/ca.pem` is trusted without it).
    #[arg(long, env = "QUIRE_CA_FILE", global = true, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
}

/// The connection options and `--json` given before the subcommand
/// (`quire --user x ping`). A subcommand's own options win over these.
#[derive(Debug, Clone, Default, Args)]
pub struct GlobalArgs {
    /// Base URL of the node, e.g. http://data.example.org:21108.
    #[arg(
        long,
        env = "QUIRE_URL",
        value_name = "URL",
        help_heading = "Connection"
    )]
    pub url: Option<String>,
    /// Account name [default: admin].
    #[arg(
        long,
        env = "QUIRE_USER",
        value_name = "NAME",
        help_heading = "Connection"
    )]
    pub user: Option<String>,
    /// Account password [default: the local node's admin-password file].
    #[arg(
        long,
        env = "QUIRE_PASSWORD",
        value_name = "PASSWORD",
        hide_env_values = true,
        help_heading = "Connection"
    )]
    pub password: Option<String>,
    /// A named connection from the Librarian client file ($HL_CLIENT_CONFIG or
    /// ~/.hl_client.cfg).
    #[arg(long, short = 'c', value_name = "NAME", help_heading = "Connection")]
    pub connection: Option<String>,
    /// Data directory of the node (`serve`), or of the local node a client command
    /// talks to when no URL or connection is given [default: ./quire-data].
    #[arg(
        long,
        env = "QUIRE_DATA_DIR",
        value_name = "DIR",
        help_heading = "Connection"
    )]
    pub data_dir: Option<PathBuf>,
    /// PEM certificates of authorities to trust for https URLs, beside the
    /// system's (the local node's `tls/ca.pem` is trusted without it).
    #[arg(
        long,
        env = "QUIRE_CA_FILE",
        value_name = "FILE",
        help_heading = "Connection"
    )]
    pub ca_file: Option<PathBuf>,
    /// Print results, and failures, as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

impl GlobalArgs {
    /// Fills what a subcommand's options left unset from these.
    pub fn fill(&self, connection: &mut ConnectionArgs, json: &mut bool) {
        let fill = |own: &mut Option<String>, global: &Option<String>| {
            if own.is_none() {
                own.clone_from(global);
            }
        };
        fill(&mut connection.url, &self.url);
        fill(&mut connection.user, &self.user);
        fill(&mut connection.password, &self.password);
        fill(&mut connection.connection, &self.connection);
        if connection.data_dir.is_none() {
            connection.data_dir.clone_from(&self.data_dir);
        }
        if connection.ca_file.is_none() {
            connection.ca_file.clone_from(&self.ca_file);
        }
        *json |= self.json;
    }
}

impl ConnectionArgs {
    /// Resolves the connection and builds a client for it.
    pub fn client(&self) -> anyhow::Result<LibrarianClient> {
        let connection = self.resolve()?;
        Ok(LibrarianClient::new(connection, REQUEST_TIMEOUT)?)
    }

    /// Resolves the connection.
    pub fn resolve(&self) -> anyhow::Result<Connection> {
        let named = match &self.connection {
            Some(name) => Some(named_connection(name)?),
            None => None,
        };
        let data_dir = self.data_dir.clone().unwrap_or_else(default_data_dir);
        let local = self.url.is_none() && named.is_none();
        let url = match (&self.url, &named) {
            (Some(url), _) => url.clone(),
            (None, Some(named)) => named.url.clone(),
            (None, None) => local_url(&data_dir),
        };
        // The CA that `quire tls init` made for the local node.
        let ca_file = self.ca_file.clone().or_else(|| {
            let made = data_dir.join(TLS_DIR).join(CA_CERT_FILE);
            (local && made.exists()).then_some(made)
        });
        let user = self
            .user
            .clone()
            .or_else(|| named.as_ref().map(|n| n.user.clone()))
            .unwrap_or_else(|| ADMIN_USER.to_string());
        let password = match (&self.password, &named) {
            (Some(password), _) => password.clone(),
            (None, Some(named)) => named.password.clone(),
            (None, None) => local_password(&data_dir)?,
        };
        Ok(Connection {
            url: normalise_url(&url),
            user,
            password,
            ca_file,
        })
    }
}

fn normalise_url(url: &str) -> String {
    let url = url.trim().trim_end_matches('/');
    if url.contains("://") {
        url.to_string()
    } else {
        format!("http://{url}")
    }
}

fn local_url(data_dir: &Path) -> String {
    std::fs::read_to_string(data_dir.join(LISTEN_ADDRESS_FILE))
        .map(|address| address.trim().to_string())
        .unwrap_or_else(|_| DEFAULT_LISTEN.to_string())
}

/// The local node's data directory when none is given: `./quire-data` if it
/// exists, else the `data_dir` of the node's configuration file (`QUIRE_CONFIG`, or
/// the packaged `/etc/quire/quire.toml`), else `./quire-data`.
fn default_data_dir() -> PathBuf {
    let here = PathBuf::from(DEFAULT_DATA_DIR);
    if here.exists() {
        return here;
    }
    let file = std::env::var_os("QUIRE_CONFIG")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(PACKAGED_CONFIG));
    Config::data_dir_of(&file).unwrap_or(here)
}

fn local_password(data_dir: &Path) -> anyhow::Result<String> {
    let path = data_dir.join(ADMIN_PASSWORD_FILE);
    let error = match std::fs::read_to_string(&path) {
        Ok(text) => return Ok(text.trim().to_string()),
        Err(error) => error,
    };
    let failure = Failure::new(format!(
        "no password given, and {} cannot be read: {error}",
        path.display()
    ));
    let remedy = if error.kind() == std::io::ErrorKind::PermissionDenied {
        "run the command as the node's user (for the packaged node: `sudo -u quire quire \
         ...`), or pass --user and --password"
    } else {
        "pass --password (or QUIRE_PASSWORD) or --connection NAME, or point --data-dir \
         (QUIRE_DATA_DIR) at the data directory of the node `quire serve` runs"
    };
    Err(failure.remedy(remedy).into())
}

/// Path of the Librarian client file.
pub fn client_file() -> Option<PathBuf> {
    if let Ok(path) = std::env::var("HL_CLIENT_CONFIG") {
        return Some(PathBuf::from(path));
    }
    std::env::var("HOME")
        .ok()
        .map(|home| Path::new(&home).join(".hl_client.cfg"))
}

/// Reads connection `name` from the Librarian client file.
pub fn named_connection(name: &str) -> anyhow::Result<Connection> {
    let path = client_file().ok_or_else(|| {
        Failure::new("cannot locate the Librarian client file")
            .remedy("set HL_CLIENT_CONFIG to its path")
    })?;
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read the Librarian client file {}", path.display()))?;
    let file: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    let Some(entry) = file["connections"].get(name) else {
        let known: Vec<&String> = file["connections"]
            .as_object()
            .map(|c| c.keys().collect())
            .unwrap_or_default();
        let failure = Failure::new(format!("no connection '{name}' in {}", path.display()));
        return Err(failure
            .remedy(format!("use one of {known:?}, or add '{name}' to the file"))
            .into());
    };
    let field = |key: &str| -> anyhow::Result<String> {
        match &entry[key] {
            serde_json::Value::String(s) => Ok(s.clone()),
            serde_json::Value::Number(n) => Ok(n.to_string()),
            _ => bail!("connection '{name}' in {} has no '{key}'", path.display()),
        }
    };
    Ok(Connection {
        url: format!(
            "{}:{}",
            field("host")?.trim_end_matches('/'),
            field("port")?
        ),
        user: field("user")?,
        password: field("password")?,
        ca_file: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_get_a_scheme_and_lose_trailing_slashes() {
        assert_eq!(normalise_url("127.0.0.1:21108"), "http://127.0.0.1:21108");
        assert_eq!(normalise_url("https://a.org:1/"), "https://a.org:1");
    }
}
