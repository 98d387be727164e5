//! Entry point: parse the command line, dispatch, map failures to exit codes.

use clap::{Parser, Subcommand};

use quire::cli;

/// quire: a self-contained data-management node speaking the Librarian v2 protocol.
///
/// Run `quire serve` to start a node on the built-in defaults (data in
/// ./quire-data, HTTP on 127.0.0.1:21108). The other subcommands talk to a node.
#[derive(Debug, Parser)]
#[command(name = "quire", version, propagate_version = true, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a node until interrupted (Ctrl-C or SIGTERM).
    Serve(cli::serve::ServeArgs),
}

fn main() -> std::process::ExitCode {
    let parsed = Cli::parse();
    let result = match parsed.command {
        Command::Serve(args) => cli::serve::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("quire: error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
