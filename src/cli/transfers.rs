//! `quire transfers`: what this node is sending to each peer, and one peer's
//! recent transfers.

use clap::Args;

use super::connection::ConnectionArgs;
use super::max_rate::show_max_rate;
use super::output::{human_size, print_json, print_table};
use crate::protocol::transfers::{
    PeerTransferSummary, Tally, TransferSummaryRequest, TransferSummaryResponse,
};

/// Options of `quire transfers`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  quire transfers                  per peer: queued, in flight, staged, completed, failed
  quire transfers site-b           site-b's recent transfers, newest first, with reasons
  quire transfers site-b --json    the same for scripts

QUEUED transfers wait for their bytes to move (consume_queue); IN FLIGHT ones have
moved and wait to be reported to the peer (check_consumed_queue); STAGED ones are at
the peer, waiting to be stored there; COMPLETED ones are stored and recorded here as
remote instances. RATE is the bytes moved to the peer in the last minute.
Needs an administrator account on the node.")]
pub struct TransfersArgs {
    /// A peer whose recent transfers to list.
    pub peer: Option<String>,
    /// Most transfers listed for the peer.
    #[arg(long, default_value_t = 50, value_name = "N")]
    pub limit: usize,
    /// Print the node's answer as JSON on stdout (and nothing else).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

/// Runs `quire transfers`.
pub fn run(args: TransfersArgs) -> anyhow::Result<()> {
    super::block_on(async {
        let client = args.connection.client()?;
        let request = TransferSummaryRequest {
            librarian_name: args.peer.clone(),
            limit: Some(args.limit),
        };
        let summary = client.transfer_summary(&request).await?;
        if args.json {
            return print_json(&summary);
        }
        match &args.peer {
            None => print_peers(&summary),
            Some(peer) => print_peer(&summary, peer),
        }
        Ok(())
    })
}

fn tally(t: Tally) -> String {
    if t.files == 0 {
        "0".into()
    } else {
        format!("{} ({})", t.files, human_size(t.bytes))
    }
}

fn print_peers(summary: &TransferSummaryResponse) {
    if summary.peers.is_empty() {
        println!("no peers and no outgoing transfers; add a peer with `quire librarians add`");
        return;
    }
    let rows: Vec<Vec<String>> = summary
        .peers
        .iter()
        .map(|p| {
            vec![
                p.librarian_name.clone(),
                state(p).into(),
                tally(p.queued),
                tally(p.in_flight),
                tally(p.staged),
                tally(p.completed),
                tally(p.failed),
                format!("{}/s", human_size(p.rate_last_minute as u64)),
                show_max_rate(p.max_rate),
            ]
        })
        .collect();
    print_table(
        &[
            "PEER",
            "TRANSFERS",
            "QUEUED",
            "IN FLIGHT",
            "STAGED",
            "COMPLETED",
            "FAILED",
            "RATE",
            "MAX RATE",
        ],
        &rows,
    );
    for peer in &summary.peers {
        if let Some(reason) = &peer.last_failure {
            let at = peer
                .last_failure_time
                .map(|t| t.to_wire())
                .unwrap_or_default();
            println!("last failure to {} ({at}): {reason}", peer.librarian_name);
        }
    }
}

fn state(peer: &PeerTransferSummary) -> &'static str {
    match (peer.known, peer.transfers_enabled) {
        (false, _) => "unknown peer",
        (true, true) => "enabled",
        (true, false) => "disabled",
    }
}

fn print_peer(summary: &TransferSummaryResponse, peer: &str) {
    if summary.transfers.is_empty() {
        println!("no outgoing transfers to {peer}");
    } else {
        let rows: Vec<Vec<String>> = summary
            .transfers
            .iter()
            .map(|t| {
                vec![
                    t.id.to_string(),
                    t.status.name().to_string(),
                    human_size(t.size),
                    t.start_time.to_wire(),
                    t.file_name.clone(),
                    t.failure.clone().unwrap_or_default(),
                ]
            })
            .collect();
        print_table(&["ID", "STATUS", "SIZE", "STARTED", "FILE", "WHY"], &rows);
    }
    for conflict in &summary.conflicts {
        println!(
            "not sent: {} ({}); remove or rename one of the copies to send it",
            conflict.file_name, conflict.reason
        );
    }
}
