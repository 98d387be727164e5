//! The `quire` command line: `serve` runs a node; every other subcommand is a client
//! of a node's HTTP API. Failures of every subcommand are reported by `failure`.

pub mod connection;
pub mod failure;
pub mod librarians;
pub mod man;
pub mod manifest;
pub mod max_rate;
pub mod output;
pub mod ping;
pub mod pipe;
pub mod search;
pub mod serve;
pub mod stores;
pub mod tasks;
pub mod tls;
pub mod transfers;
pub mod upload;
pub mod users;
pub mod validate;

/// The end of `quire --help`.
pub const ABOUT_MORE: &str = "\
Getting started:
  quire serve                       start a node on the defaults (terminal 1)
  quire upload x.dat obs/x.dat      upload a file to it (terminal 2, same directory)
  quire search --name obs/x.dat     find it

Client commands reach the local node of ./quire-data by default (else the data_dir of
$QUIRE_CONFIG or /etc/quire/quire.toml); use --url, --user and --password (or QUIRE_URL,
QUIRE_USER, QUIRE_PASSWORD), or --connection NAME from the Librarian client file, for any
other node. These options and --json go before or after the subcommand.

Every command takes --json for scripts: results, and failures as {\"error\", \"remedy\"},
go to stdout. Exit status: 0 on success, 1 on failure, 2 for a wrong command line; a
command whose stdout is closed early (`quire search | head`) ends silently by SIGPIPE.

Environment: QUIRE_CONFIG, QUIRE_DATA_DIR, QUIRE_LISTEN and any QUIRE_<setting> for the
node; QUIRE_LOG sets log verbosity (e.g. QUIRE_LOG=debug).";

/// The command the user ran, as they would type it: `quire users create`.
pub fn command_name(matches: &clap::ArgMatches) -> String {
    let mut name = String::from("quire");
    let mut current = matches;
    while let Some((sub, sub_matches)) = current.subcommand() {
        name.push(' ');
        name.push_str(sub);
        current = sub_matches;
    }
    name
}

/// Runs a client subcommand's async body on a single-threaded runtime.
pub(crate) fn block_on(
    body: impl std::future::Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(body)
}
