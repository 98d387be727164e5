//! `quire search`: find files by name, uploader, source or creation time.

use clap::Args;

use super::connection::ConnectionArgs;
use super::output::{human_size, print_json, print_table};
use crate::model::Timestamp;
use crate::protocol::search::FileSearchRequest;

/// Options of `quire search`.
#[derive(Debug, Args)]
pub struct SearchArgs {
    /// Exact file name.
    #[arg(long, short = 'n')]
    pub name: Option<String>,
    /// Files uploaded by this account.
    #[arg(long, short = 'u')]
    pub uploader: Option<String>,
    /// Files that entered the network through this librarian.
    #[arg(long, short = 's')]
    pub source: Option<String>,
    /// Files created at or after this time (ISO 8601, UTC unless a zone is given).
    #[arg(long, value_parser = Timestamp::parse)]
    pub since: Option<Timestamp>,
    /// Files created at or before this time.
    #[arg(long, value_parser = Timestamp::parse)]
    pub until: Option<Timestamp>,
    /// Most results (the node may allow fewer).
    #[arg(long, default_value_t = 64)]
    pub max_results: usize,
    /// Print the results as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

/// Runs `quire search`, newest files first.
pub fn run(args: SearchArgs) -> anyhow::Result<()> {
    super::block_on(async {
        let client = args.connection.client()?;
        let window = (args.since.is_some() || args.until.is_some()).then(|| {
            vec![
                args.since.unwrap_or(Timestamp::from_micros(i64::MIN / 2)),
                args.until.unwrap_or(Timestamp::from_micros(i64::MAX / 2)),
            ]
        });
        let results = client
            .search_files(&FileSearchRequest {
                name: args.name,
                create_time_window: window,
                uploader: args.uploader,
                source: args.source,
                max_results: args.max_results,
            })
            .await?;
        if args.json {
            return print_json(&results);
        }
        if results.is_empty() {
            println!("no files found");
            return Ok(());
        }
        let rows: Vec<Vec<String>> = results
            .iter()
            .map(|f| {
                vec![
                    f.name.clone(),
                    human_size(f.size),
                    f.create_time.to_wire()[..19].replace('T', " "),
                    f.uploader.clone(),
                    format!("{}+{}", f.instances.len(), f.remote_instances.len()),
                    f.checksum.clone(),
                ]
            })
            .collect();
        print_table(
            &[
                "NAME",
                "SIZE",
                "CREATED (UTC)",
                "UPLOADER",
                "COPIES",
                "CHECKSUM",
            ],
            &rows,
        );
        Ok(())
    })
}
