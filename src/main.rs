//! Entry point: parse the command line, dispatch, report a failure (text on stderr,
//! or JSON on stdout with `--json`) with exit status 1.

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use quire::cli;
use quire::cli::connection::GlobalArgs;

/// A self-contained data-management node speaking the Librarian v2 protocol.
///
/// Run `quire serve` to start a node on the built-in defaults (data in
/// ./quire-data, HTTP on 127.0.0.1:21108). The other subcommands talk to a node.
#[derive(Debug, Parser)]
#[command(
    name = "quire",
    version,
    propagate_version = true,
    max_term_width = 100,
    after_help = cli::ABOUT_MORE
)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
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
    /// What this node is sending to each peer, or one peer's recent transfers.
    Transfers(cli::transfers::TransfersArgs),
    /// SneakerNet: write a store's manifest, or ingest one from a drive.
    Manifest(cli::manifest::ManifestArgs),
    /// HTTPS: make a private CA and a certificate for this node (`tls init`).
    Tls(cli::tls::TlsArgs),
    /// Print this manual page (roff) on stdout, e.g. `quire man | man -l -`.
    #[command(hide = true)]
    Man,
}

fn main() -> std::process::ExitCode {
    cli::pipe::end_quietly_when_stdout_closes();
    let matches = Cli::command().get_matches();
    let command_name = cli::command_name(&matches);
    let Cli { global, command } = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let mut json = global.json;
    let result = match command {
        Command::Serve(mut args) => {
            if args.data_dir.is_none() {
                args.data_dir.clone_from(&global.data_dir);
            }
            cli::serve::run(args)
        }
        Command::Upload(mut args) => {
            global.fill(&mut args.connection, &mut args.json);
            json = args.json;
            cli::upload::run(args)
        }
        Command::Ping(mut args) => {
            global.fill(&mut args.connection, &mut args.json);
            json = args.json;
            cli::ping::run(args)
        }
        Command::Search(mut args) => {
            global.fill(&mut args.connection, &mut args.json);
            json = args.json;
            cli::search::run(args)
        }
        Command::Validate(mut args) => {
            global.fill(&mut args.connection, &mut args.json);
            json = args.json;
            cli::validate::run(args)
        }
        Command::Stores(mut args) => {
            global.fill(&mut args.connection, &mut args.json);
            json = args.json;
            cli::stores::run(args)
        }
        Command::Users(mut args) => {
            global.fill(&mut args.connection, &mut args.json);
            json = args.json;
            cli::users::run(args)
        }
        Command::Tasks(mut args) => {
            global.fill(&mut args.connection, &mut args.json);
            json = args.json;
            cli::tasks::run(args)
        }
        Command::Librarians(mut args) => {
            global.fill(&mut args.connection, &mut args.json);
            json = args.json;
            cli::librarians::run(args)
        }
        Command::Transfers(mut args) => {
            global.fill(&mut args.connection, &mut args.json);
            json = args.json;
            cli::transfers::run(args)
        }
        Command::Manifest(mut args) => {
            global.fill(&mut args.connection, &mut args.json);
            json = args.json;
            cli::manifest::run(args)
        }
        Command::Tls(mut args) => {
            let cli::tls::TlsCommand::Init(init) = &mut args.command;
            if init.data_dir.is_none() {
                init.data_dir.clone_from(&global.data_dir);
            }
            init.json |= global.json;
            json = init.json;
            cli::tls::run(args)
        }
        Command::Man => cli::man::print(Cli::command()),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => cli::failure::report(&error, &command_name, json),
    }
}
