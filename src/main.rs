//! Entry point: parse the command line, dispatch, map failures to exit codes.

use clap::{Parser, Subcommand};

use quire::cli;

/// quire: a self-contained data-management node speaking the Librarian v2 protocol.
///
/// Run `quire serve` to start a node on the built-in defaults (data in
/// ./quire-data, HTTP on 127.0.0.1:21108). The other subcommands talk to a node.
#[derive(Debug, Parser)]
#[command(
    name = "quire",
    version,
    propagate_version = true,
    max_term_width = 100,
    after_help = "\
Getting started:
  quire serve                       start a node on the defaults (terminal 1)
  quire upload x.dat obs/x.dat      upload a file to it (terminal 2, same directory)
  quire search --name obs/x.dat     find it

Client commands reach the local node of ./quire-data by default; use --url, --user and
--password (or QUIRE_URL, QUIRE_USER, QUIRE_PASSWORD), or --connection NAME from the
Librarian client file, for any other node. Every command takes --json for scripts.

Environment: QUIRE_CONFIG, QUIRE_DATA_DIR, QUIRE_LISTEN and any QUIRE_<setting> for the
node; QUIRE_LOG sets log verbosity (e.g. QUIRE_LOG=debug)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a node until interrupted (Ctrl-C or SIGTERM).
    Serve(cli::serve::ServeArgs),
    /// Upload a file, a directory as one file, or (--batch) every file of a directory.
    Upload(cli::upload::UploadArgs),
    /// Check that the node answers and that the credentials work.
    Ping(cli::ping::PingArgs),
    /// Find files by name, uploader, source or creation time.
    Search(cli::search::SearchArgs),
    /// Re-hash every copy of a file and compare it with the record.
    Validate(cli::validate::ValidateArgs),
    /// List stores, or enable or disable one.
    Stores(cli::stores::StoresArgs),
    /// List, create and delete accounts; change passwords.
    Users(cli::users::UsersArgs),
    /// Show the node's background tasks (last and next run), or run one now.
    Tasks(cli::tasks::TasksArgs),
    /// List, add and remove peer librarians; enable or disable transfers to one.
    Librarians(cli::librarians::LibrariansArgs),
    /// SneakerNet: write a store's manifest, or ingest one from a drive.
    Manifest(cli::manifest::ManifestArgs),
}

fn main() -> std::process::ExitCode {
    let parsed = Cli::parse();
    let result = match parsed.command {
        Command::Serve(args) => cli::serve::run(args),
        Command::Upload(args) => cli::upload::run(args),
        Command::Ping(args) => cli::ping::run(args),
        Command::Search(args) => cli::search::run(args),
        Command::Validate(args) => cli::validate::run(args),
        Command::Stores(args) => cli::stores::run(args),
        Command::Users(args) => cli::users::run(args),
        Command::Tasks(args) => cli::tasks::run(args),
        Command::Librarians(args) => cli::librarians::run(args),
        Command::Manifest(args) => cli::manifest::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("quire: error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
