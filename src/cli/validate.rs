//! `quire validate NAME`: re-hash every copy of a file and compare with its record.

use clap::Args;

use super::connection::ConnectionArgs;
use super::output::{human_size, print_json, print_table};

/// Options of `quire validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The file's name.
    pub name: String,
    /// Print the rows as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

/// Runs `quire validate`; fails if any copy does not match.
pub fn run(args: ValidateArgs) -> anyhow::Result<()> {
    super::block_on(async {
        let client = args.connection.client()?;
        let rows = client.validate(&args.name).await?;
        let bad = rows.iter().filter(|r| !r.computed_same_checksum).count();
        if args.json {
            print_json(&rows)?;
        } else if rows.is_empty() {
            println!("{} has no available copy to validate", args.name);
        } else {
            let table: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    vec![
                        if r.computed_same_checksum {
                            "ok"
                        } else {
                            "MISMATCH"
                        }
                        .to_string(),
                        r.librarian.clone(),
                        r.store.to_string(),
                        r.instance_id.to_string(),
                        human_size(r.current_size),
                        r.current_checksum.clone(),
                    ]
                })
                .collect();
            print_table(
                &[
                    "RESULT",
                    "LIBRARIAN",
                    "STORE",
                    "INSTANCE",
                    "SIZE",
                    "CURRENT CHECKSUM",
                ],
                &table,
            );
        }
        if bad > 0 {
            anyhow::bail!(
                "{bad} of {} copies of {} do not match their record",
                rows.len(),
                args.name
            );
        }
        Ok(())
    })
}
