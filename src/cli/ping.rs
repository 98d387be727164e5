//! `quire ping`: is the node there, and what may this account do?

use clap::Args;
use serde::Serialize;

use super::connection::ConnectionArgs;
use super::failure::Failure;
use super::output::print_json;

/// Options of `quire ping`.
#[derive(Debug, Args)]
pub struct PingArgs {
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

#[derive(Debug, Serialize)]
struct PingReport {
    url: String,
    name: String,
    description: String,
    user: String,
    credentials_valid: bool,
    admin: bool,
}

/// Runs `quire ping`; fails if the node cannot be reached or the credentials are
/// wrong.
pub fn run(args: PingArgs) -> anyhow::Result<()> {
    super::block_on(async {
        let client = args.connection.client()?;
        let answer = client.ping().await?;
        let credentials_valid = client.ping_logged().await.is_ok();
        let admin = credentials_valid && client.ping_admin().await.is_ok();
        let report = PingReport {
            url: client.connection().url.clone(),
            name: answer.name,
            description: answer.description,
            user: client.connection().user.clone(),
            credentials_valid,
            admin,
        };
        if args.json {
            print_json(&report)?;
        } else {
            println!("{} at {}: {}", report.name, report.url, report.description);
            let role = if admin {
                "an administrator"
            } else {
                "not an administrator"
            };
            match credentials_valid {
                true => println!("logged in as {} ({role})", report.user),
                false => println!("the password for {} is wrong", report.user),
            }
        }
        if !credentials_valid {
            let failure = Failure::new(format!(
                "the node rejected the password of '{}'",
                report.user
            ));
            return Err(failure
                .remedy(
                    "check --user and --password (QUIRE_USER, QUIRE_PASSWORD), or the \
                     connection named by --connection",
                )
                .into());
        }
        Ok(())
    })
}
