//! `quire librarians`: the node's registry of peer librarians (list, add, remove,
//! enable or disable transfers to one).

use std::io::{BufRead, IsTerminal};

use anyhow::Context;
use clap::{Args, Subcommand};

use super::connection::ConnectionArgs;
use super::failure::Failure;
use super::max_rate::{parse_max_rate, show_max_rate};
use super::output::{print_json, print_table};
use crate::peer::LibrarianClient;
use crate::protocol::librarians::AddLibrarianRequest;

/// Options of `quire librarians`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  quire librarians                                   list the known peers
  quire librarians list --ping                       ... and check that each answers
  quire librarians add site-b https://b.example.org --port 21108 --peer-user site-a
  quire librarians transfers site-b disable          stop sending clones to site-b
  quire librarians max-rate site-b 6MB/s             cap what is sent to site-b
  quire librarians remove site-b --remove-outgoing-transfers

A peer is another librarian (a quire node or a Librarian server) this node sends
files to and calls back. The node logs in to the peer with an account on the peer
(--peer-user); by convention that account is named after this node, since the peer
checks that callbacks come from the librarian a transfer belongs to. The node keeps
the peer's password sealed with a key outside its database (peer_key_file, default
<data_dir>/peer-secret.key): back that file up, or re-add the peers after losing it.

Every action needs an administrator account on the node.

Exit status: 0 on success; 1 when the node refused (unknown peer, peer already known,
peer not answering) or could not be reached.")]
pub struct LibrariansArgs {
    #[command(subcommand)]
    pub action: Option<LibrariansAction>,
    /// Print the node's answer as JSON on stdout (and nothing else).
    #[arg(long, global = true)]
    pub json: bool,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

/// What to do with peer librarians.
#[derive(Debug, Subcommand)]
pub enum LibrariansAction {
    /// List the known peers: address, whether transfers to them are enabled and,
    /// with --ping, whether they answer (the default action).
    List {
        /// Ping every peer (ping/) and show whether it answered; without it the
        /// AVAILABLE column shows "-".
        #[arg(long)]
        ping: bool,
    },
    /// Register a peer librarian. By default the node first pings it (ping/) and
    /// adds nothing if it does not answer.
    #[command(after_help = "\
The password of --peer-user comes from --peer-password, else from QUIRE_PEER_PASSWORD,
else it is asked for on the terminal (not echoed), else read as one line from stdin:
  printf '%s\\n' \"$PW\" | quire librarians add site-b http://10.0.0.2 --port 21108 \\
      --peer-user site-a
Prefer the environment or stdin to --peer-password, which other users can see in the
process list.

To change a peer's address or password, remove it and add it again.")]
    Add {
        /// The peer's name: the name it is known by in the network (its `name`
        /// setting), used in transfers and callbacks.
        name: String,
        /// Scheme and host of the peer, without the port: http://host or
        /// https://host[/path].
        #[arg(value_name = "URL")]
        peer_url: String,
        /// The peer's TCP port.
        #[arg(long, value_name = "N")]
        port: u16,
        /// The account this node logs in with on the peer (usually named after this
        /// node).
        #[arg(long, value_name = "USER")]
        peer_user: String,
        /// That account's password [default: $QUIRE_PEER_PASSWORD, a prompt, or
        /// stdin].
        #[arg(
            long,
            env = "QUIRE_PEER_PASSWORD",
            hide_env_values = true,
            value_name = "PASSWORD"
        )]
        peer_password: Option<String>,
        /// Add the peer without pinging it first (e.g. while it is down).
        #[arg(long)]
        no_check: bool,
        /// Most bytes per second sent to the peer, over all transfers at once
        /// (e.g. 6MB/s, 500KiB/s); no cap by default. Change it later with
        /// `quire librarians max-rate`.
        #[arg(long, value_name = "RATE", value_parser = parse_rate_arg)]
        max_rate: Option<u64>,
    },
    /// Forget a peer. Its live outgoing transfers are kept (they go on if the peer
    /// is added again) unless --remove-outgoing-transfers cancels them.
    Remove {
        /// The peer's name.
        name: String,
        /// Also cancel every outgoing transfer to the peer that is not finished
        /// (the peer is told, best effort).
        #[arg(long)]
        remove_outgoing_transfers: bool,
    },
    /// Cap (or uncap) the bytes per second sent to a peer; applies from the next
    /// batch sent.
    MaxRate {
        /// The peer's name.
        name: String,
        /// A rate such as 6MB/s, 500KiB/s or 1GB/s, or none to lift the cap.
        #[arg(value_name = "RATE", value_parser = parse_rate_cap)]
        rate: RateCap,
    },
    /// Enable or disable sending files to a peer.
    Transfers {
        /// The peer's name.
        name: String,
        /// enable or disable.
        #[arg(value_enum)]
        state: TransferSwitch,
    },
}

fn parse_rate_arg(text: &str) -> Result<u64, String> {
    parse_max_rate(text)?.ok_or_else(|| "a cap of none is the default; leave --max-rate out".into())
}

/// A cap, or none (`none`). Wrapped: clap would take a bare `Option` for an
/// argument that may be left out.
#[derive(Debug, Clone, Copy)]
pub struct RateCap(Option<u64>);

fn parse_rate_cap(text: &str) -> Result<RateCap, String> {
    parse_max_rate(text).map(RateCap)
}

/// The two states of a peer's transfers.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum TransferSwitch {
    Enable,
    Disable,
}

/// Runs `quire librarians`.
pub fn run(args: LibrariansArgs) -> anyhow::Result<()> {
    super::block_on(async {
        let client = args.connection.client()?;
        let json = args.json;
        match args
            .action
            .unwrap_or(LibrariansAction::List { ping: false })
        {
            LibrariansAction::List { ping } => list(&client, ping, json).await,
            LibrariansAction::Add {
                name,
                peer_url,
                port,
                peer_user,
                peer_password,
                no_check,
                max_rate,
            } => {
                let password = match peer_password {
                    Some(password) => password,
                    None => read_password(&peer_user, &name)?,
                };
                let request = AddLibrarianRequest {
                    librarian_name: name,
                    url: peer_url,
                    port: i64::from(port),
                    authenticator: format!("{peer_user}:{password}"),
                    check_connection: !no_check,
                    max_rate,
                };
                add(&client, &request, json).await
            }
            LibrariansAction::Remove {
                name,
                remove_outgoing_transfers,
            } => {
                let removed = client
                    .remove_librarian(&name, remove_outgoing_transfers)
                    .await?;
                if json {
                    return print_json(&removed);
                }
                println!("peer {name} removed");
                if remove_outgoing_transfers {
                    println!(
                        "{} outgoing transfers to it cancelled",
                        removed.number_of_transfers_removed
                    );
                } else {
                    println!(
                        "its unfinished outgoing transfers were kept; use \
                         --remove-outgoing-transfers to cancel them"
                    );
                }
                Ok(())
            }
            LibrariansAction::MaxRate { name, rate } => {
                let changed = client.set_librarian_max_rate(&name, rate.0).await?;
                if json {
                    return print_json(&changed);
                }
                match changed.max_rate {
                    Some(rate) => println!(
                        "what is sent to {} is capped at {}",
                        changed.librarian_name,
                        show_max_rate(Some(rate))
                    ),
                    None => println!("what is sent to {} is not capped", changed.librarian_name),
                }
                Ok(())
            }
            LibrariansAction::Transfers { name, state } => {
                let enabled = matches!(state, TransferSwitch::Enable);
                let changed = client.set_librarian_transfers(&name, enabled).await?;
                if json {
                    return print_json(&changed);
                }
                let state = if changed.transfers_enabled {
                    "enabled"
                } else {
                    "disabled"
                };
                println!("transfers to {} are {state}", changed.librarian_name);
                Ok(())
            }
        }
    })
}

async fn list(client: &LibrarianClient, ping: bool, json: bool) -> anyhow::Result<()> {
    let listed = client.list_librarians(ping).await?;
    if json {
        return print_json(&listed);
    }
    if listed.librarians.is_empty() {
        println!("no peer librarians are known; add one with `quire librarians add`");
        return Ok(());
    }
    let yes_no = |b: bool| if b { "yes" } else { "no" }.to_string();
    let rows: Vec<Vec<String>> = listed
        .librarians
        .iter()
        .map(|peer| {
            vec![
                peer.name.clone(),
                peer.url.clone(),
                peer.port.to_string(),
                if peer.enabled { "enabled" } else { "disabled" }.to_string(),
                peer.available.map(yes_no).unwrap_or_else(|| "-".into()),
                show_max_rate(peer.max_rate),
            ]
        })
        .collect();
    print_table(
        &["NAME", "URL", "PORT", "TRANSFERS", "AVAILABLE", "MAX RATE"],
        &rows,
    );
    Ok(())
}

async fn add(
    client: &LibrarianClient,
    request: &AddLibrarianRequest,
    json: bool,
) -> anyhow::Result<()> {
    let name = &request.librarian_name;
    let added = client.add_librarian(request).await?;
    if json {
        print_json(&added)?;
    }
    if added.already_exists {
        let failure = Failure::new(format!(
            "a peer named {name} is already known and was left unchanged"
        ));
        return Err(failure
            .remedy(format!(
                "to change its address or password, run `quire librarians remove {name}` \
                 and add it again"
            ))
            .into());
    }
    if !added.success {
        let failure = Failure::new(format!(
            "{name} did not answer ping/ at {}:{}, so it was not added",
            request.url, request.port
        ));
        return Err(failure
            .remedy(
                "check the URL, the port and that the peer is running, or add it anyway \
                 with --no-check",
            )
            .into());
    }
    if !json {
        match added.ping_success {
            Some(true) => println!("peer {name} added; it answered ping/"),
            _ => println!("peer {name} added (connection not checked)"),
        }
    }
    if added.credentials_accepted == Some(false) {
        let user = request.authenticator.split(':').next().unwrap_or_default();
        eprintln!(
            "quire: warning: {name} refused the password of its account '{user}', so \
             transfers and callbacks to it will fail; check the account on {name}, then \
             `quire librarians remove {name}` and add it again with the right password"
        );
    }
    Ok(())
}

/// The peer account's password: asked for on the terminal without echo, or read as
/// one line from stdin when stdin is not a terminal.
fn read_password(user: &str, peer: &str) -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    let password = if stdin.is_terminal() {
        prompt_without_echo(&format!("password of {user} on {peer}: "))?
    } else {
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .context("cannot read the peer password from stdin")?;
        line.trim_end_matches(['\n', '\r']).to_string()
    };
    if password.is_empty() {
        let failure = Failure::new(format!("no password for {user} on {peer}"));
        return Err(failure
            .remedy(
                "give it with --peer-password, QUIRE_PEER_PASSWORD, on the terminal, or as \
                 a line on stdin",
            )
            .into());
    }
    Ok(password)
}

/// Prompts on stderr and reads a line from the terminal with echo switched off.
fn prompt_without_echo(prompt: &str) -> anyhow::Result<String> {
    use std::io::Write;
    eprint!("{prompt}");
    std::io::stderr().flush()?;
    let fd = libc::STDIN_FILENO;
    // SAFETY: termios is plain data; tcgetattr fills it for a valid descriptor
    // and reports failure otherwise.
    let mut settings: libc::termios = unsafe { std::mem::zeroed() };
    if unsafe { libc::tcgetattr(fd, &mut settings) } != 0 {
        return Err(std::io::Error::last_os_error()).context("cannot read terminal settings");
    }
    let original = settings;
    settings.c_lflag &= !libc::ECHO;
    settings.c_lflag |= libc::ECHONL;
    // SAFETY: the settings come from tcgetattr on the same descriptor.
    unsafe { libc::tcsetattr(fd, libc::TCSANOW, &settings) };
    let mut line = String::new();
    let read = std::io::stdin().lock().read_line(&mut line);
    // SAFETY: restores the settings read above.
    unsafe { libc::tcsetattr(fd, libc::TCSANOW, &original) };
    read.context("cannot read the password from the terminal")?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}
