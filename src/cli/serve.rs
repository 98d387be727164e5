//! `quire serve`: run a node until interrupted.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use super::failure::Failure;
use crate::config::{Config, ConfigSources, LogFormat};
use crate::node::{
    ADMIN_PASSWORD_FILE, ADMIN_USER, LISTEN_ADDRESS_FILE, Node, RecoveryMode, open_node, recover,
};
use crate::tasks::Tasks;

/// How often the node looks for expired uploads and orphaned staging.
const SWEEP_EVERY: Duration = Duration::from_secs(600);
/// Staging younger than this is never treated as orphaned by the periodic sweep.
const SWEEP_MIN_AGE: Duration = Duration::from_secs(3600);
/// How long requests in flight may run on after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Options of `quire serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// TOML configuration file. Without one, the node runs on built-in defaults.
    #[arg(long, env = "QUIRE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory: database, generated secrets, default store
    /// [default: ./quire-data].
    #[arg(long, env = "QUIRE_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address to listen on, host:port; port 0 picks a free port
    /// [default: 127.0.0.1:21108].
    #[arg(long, env = "QUIRE_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,
    /// A Librarian-style background task file (JSON: one key per task type, each a
    /// list of entries with task_name, every, soft_timeout and the type's settings).
    /// Its tasks are added to the [[tasks.<type>]] tables of the configuration.
    #[arg(long, env = "LIBRARIAN_BACKGROUND_CONFIG", value_name = "FILE")]
    pub background_config: Option<PathBuf>,
}

/// Runs the node.
pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let config = Config::load(&ConfigSources {
        file: args.config,
        data_dir: args.data_dir,
        listen: args.listen,
        background_config: args.background_config,
    })?;
    init_logging(config.log_format);
    raise_open_file_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("quire-worker")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(config))
}

/// Raises the soft open-file limit to the hard one: batch uploads and drop-box
/// batches hold one descriptor per file in flight, and a common soft limit
/// (1024) would refuse files of a few concurrent batches.
fn raise_open_file_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        let raised = rustix::process::Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if let Err(error) = setrlimit(Resource::Nofile, raised) {
            tracing::warn!(%error, "cannot raise the open-file limit");
        }
    }
}

/// Logs go to stderr, coloured only when stderr is a terminal.
fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("QUIRE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    // Bound before anything is created: a node that cannot listen leaves no trace.
    let listener = bind(&config.listen).await?;
    let tls = tls_acceptor(&config)?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let shutdown_requested = shutdown_signal()?;
    let log_format = config.log_format;
    let (node, admin_password) = tokio::task::spawn_blocking(move || open_node(config)).await??;
    if let Some(password) = admin_password {
        announce_admin_password(&node, &password, log_format);
    }
    let report = {
        let node = node.clone();
        tokio::task::spawn_blocking(move || recover(&node, RecoveryMode::StartUp)).await??
    };
    tracing::info!(
        restored_commits = report.restored_commits,
        failed_transfers = report.failed_transfers,
        removed_staging = report.removed_staging,
        taken_back_uploads = report.taken_back_uploads,
        "start-up recovery done"
    );
    let dropboxes = crate::dropbox::spawn(node.clone()).await?;

    let address = listener.local_addr()?;
    crate::node::setup_write_listen_address(&node.config.data_dir, address, tls.is_some())
        .context("cannot record the listen address")?;
    println!(
        "quire: node '{}' serving {} on {scheme}://{address}",
        node.config.name,
        node.config.data_dir.display()
    );
    spawn_sweeper(node.clone());
    let task_loops = Tasks::spawn(&node);
    let shutdown = {
        let node = node.clone();
        async move {
            shutdown_requested.await;
            // Before requests drain: a caller waiting on a task run gets its answer.
            node.tasks.begin_shutdown();
        }
    };
    crate::http::serve(listener, tls, node.clone(), shutdown, SHUTDOWN_GRACE).await?;
    dropboxes.shutdown().await;
    crate::tasks::wait_for(task_loops, SHUTDOWN_GRACE).await;
    let _ = std::fs::remove_file(node.config.data_dir.join(LISTEN_ADDRESS_FILE));
    tracing::info!("stopped");
    Ok(())
}

/// The HTTPS acceptor of `[tls]`, or `None` for plain HTTP; loaded before anything
/// is created, so that a node with an unusable certificate leaves no trace.
fn tls_acceptor(config: &Config) -> anyhow::Result<Option<tokio_rustls::TlsAcceptor>> {
    let (Some(cert), Some(key)) = (&config.tls.cert_file, &config.tls.key_file) else {
        return Ok(None);
    };
    crate::http::tls::acceptor(&config.resolve(cert), &config.resolve(key))
        .map(Some)
        .map_err(|why| {
            Failure::new(why)
                .remedy(
                    "check tls.cert_file and tls.key_file in the configuration (`quire tls \
                     init` makes a CA and a node certificate for a quick start), or remove the \
                     [tls] table to serve plain HTTP",
                )
                .into()
        })
}

/// Binds the listening socket; a failure says which setting chooses the address.
async fn bind(listen: &str) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|error| {
            let cause = match error.kind() {
                std::io::ErrorKind::AddrInUse => {
                    "the address is in use (by another quire node or another program)".to_string()
                }
                _ => error.to_string(),
            };
            Failure::new(format!("cannot listen on {listen}: {cause}"))
                .remedy(
                    "choose another address with --listen or QUIRE_LISTEN (or `listen` in the \
                 configuration file), or stop what uses this one",
                )
                .into()
        })
}

/// Shows the generated admin password on the terminal only: on stderr when it is a
/// terminal and logs are text. A redirected stderr or a JSON log never holds it;
/// the log line says which file (mode 0600) does.
fn announce_admin_password(node: &Node, password: &str, format: LogFormat) {
    let file = node.config.data_dir.join(ADMIN_PASSWORD_FILE);
    if std::io::stderr().is_terminal() && format == LogFormat::Text {
        eprintln!(
            "quire: created the account 'admin' with password {password}\n\
             quire: the password is also in {} (readable only by you); it is not shown again",
            file.display()
        );
    }
    tracing::info!(
        user = ADMIN_USER,
        password_file = %file.display(),
        "created the account 'admin'; its password is in the password file, readable only \
         by this user"
    );
}

/// Periodically fails expired uploads and removes orphaned staging.
fn spawn_sweeper(node: Arc<Node>) {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(SWEEP_EVERY);
        interval.tick().await;
        loop {
            interval.tick().await;
            let node = node.clone();
            let mode = RecoveryMode::Sweep {
                min_age: SWEEP_MIN_AGE,
            };
            let swept = tokio::task::spawn_blocking(move || recover(&node, mode)).await;
            if let Ok(Err(error)) = swept {
                tracing::error!(%error, "staging sweep failed");
            }
        }
    });
}

/// Installs the SIGTERM and SIGINT handlers now, so that a signal that comes at
/// any later point (even before the first request) stops the node gracefully; the
/// future ends when one arrives.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate =
        signal(SignalKind::terminate()).context("cannot install the SIGTERM handler")?;
    let mut interrupt =
        signal(SignalKind::interrupt()).context("cannot install the SIGINT handler")?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        tracing::info!("shutdown requested; finishing requests in flight");
    })
}
