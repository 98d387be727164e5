//! `quire stores`: list stores, enable or disable one.

use clap::{Args, Subcommand};

use super::connection::ConnectionArgs;
use super::output::{human_size, print_json, print_table};

/// Options of `quire stores`.
#[derive(Debug, Args)]
pub struct StoresArgs {
    #[command(subcommand)]
    pub action: Option<StoresAction>,
    /// Print the result as JSON.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

/// What to do with stores.
#[derive(Debug, Subcommand)]
pub enum StoresAction {
    /// List every store with its free space and state (the default).
    List,
    /// Let a store receive new data again.
    Enable {
        /// The store's name.
        store: String,
    },
    /// Stop a store from receiving new data (e.g. before swapping a drive).
    Disable {
        /// The store's name.
        store: String,
    },
}

/// Runs `quire stores`.
pub fn run(args: StoresArgs) -> anyhow::Result<()> {
    super::block_on(async {
        let client = args.connection.client()?;
        let (store, enabled) = match args.action.unwrap_or(StoresAction::List) {
            StoresAction::List => {
                let stores = client.stores().await?;
                if args.json {
                    return print_json(&stores);
                }
                let yes_no = |b: bool| if b { "yes" } else { "no" }.to_string();
                let rows: Vec<Vec<String>> = stores
                    .iter()
                    .map(|s| {
                        vec![
                            s.name.clone(),
                            human_size(s.free_space),
                            yes_no(s.ingestable),
                            yes_no(s.available),
                            yes_no(s.enabled),
                        ]
                    })
                    .collect();
                print_table(
                    &["NAME", "FREE", "INGESTABLE", "AVAILABLE", "ENABLED"],
                    &rows,
                );
                return Ok(());
            }
            StoresAction::Enable { store } => (store, true),
            StoresAction::Disable { store } => (store, false),
        };
        let changed = client.set_store_enabled(&store, enabled).await?;
        if args.json {
            print_json(&changed)
        } else {
            let state = if changed.enabled {
                "enabled"
            } else {
                "disabled"
            };
            println!("store {} is {state}", changed.store_name);
            Ok(())
        }
    })
}
