//! `quire users`: list, create, delete accounts and change passwords.

use clap::{Args, Subcommand};

use super::connection::ConnectionArgs;
use super::output::{print_json, print_table};
use crate::accounts::generate_password;
use crate::model::AuthLevel;
use crate::protocol::users::{UserCreationRequest, UserListResponse, UserUpdateRequest};

/// Options of `quire users`.
#[derive(Debug, Args)]
pub struct UsersArgs {
    #[command(subcommand)]
    pub action: Option<UsersAction>,
    /// Print the result as JSON.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

/// What to do with accounts.
#[derive(Debug, Subcommand)]
pub enum UsersAction {
    /// List every account and its level (the default).
    List,
    /// Create an account; prints a generated password unless one is given.
    Create {
        /// The account name (a peer librarian's account must be named after it).
        username: String,
        /// none, readonly, callback, readappend, readwrite or admin.
        #[arg(long, value_parser = parse_level)]
        level: AuthLevel,
        /// The new account's password [default: generated and printed].
        #[arg(long, value_name = "PASSWORD")]
        set_password: Option<String>,
    },
    /// Delete an account.
    Delete {
        /// The account name.
        username: String,
    },
    /// Change a password: your own (giving the current one with --password), or,
    /// as an administrator, another account's.
    Passwd {
        /// The account to change [default: your own].
        username: Option<String>,
        /// The new password [default: generated and printed].
        #[arg(long, value_name = "PASSWORD")]
        set_password: Option<String>,
    },
}

fn parse_level(text: &str) -> Result<AuthLevel, String> {
    AuthLevel::parse(text).ok_or_else(|| {
        format!(
            "'{text}' is not a level; use none, readonly, callback, readappend, readwrite or admin"
        )
    })
}

/// Runs `quire users`.
pub fn run(args: UsersArgs) -> anyhow::Result<()> {
    super::block_on(async {
        let client = args.connection.client()?;
        let json = args.json;
        match args.action.unwrap_or(UsersAction::List) {
            UsersAction::List => {
                let list = client.list_users().await?;
                if json {
                    return print_json(&listing_json(&list));
                }
                let rows: Vec<Vec<String>> = list
                    .users
                    .iter()
                    .map(|u| vec![u.username.clone(), u.permission.to_string()])
                    .collect();
                print_table(&["USERNAME", "LEVEL"], &rows);
            }
            UsersAction::Create {
                username,
                level,
                set_password,
            } => {
                let (password, generated) = password_or_generated(set_password);
                let created = client
                    .create_user(&UserCreationRequest {
                        username: username.clone(),
                        password: password.clone(),
                        permission: level,
                    })
                    .await?;
                report(
                    json,
                    &created.username,
                    "created",
                    generated.then_some(&password),
                )?;
            }
            UsersAction::Delete { username } => {
                let deleted = client.delete_user(&username).await?;
                report(json, &deleted.username, "deleted", None)?;
            }
            UsersAction::Passwd {
                username,
                set_password,
            } => {
                let (password, generated) = password_or_generated(set_password);
                let me = client.connection().user.clone();
                let changed = match username.filter(|name| *name != me) {
                    Some(other) => {
                        client
                            .update_user(&UserUpdateRequest {
                                username: other,
                                password: Some(password.clone()),
                                permission: None,
                            })
                            .await?
                    }
                    None => {
                        let current = client.connection().password.clone();
                        client.change_own_password(&current, &password).await?
                    }
                };
                report(
                    json,
                    &changed.username,
                    "has a new password",
                    generated.then_some(&password),
                )?;
            }
        }
        Ok(())
    })
}

/// `users/list` as JSON, each level given by its protocol number (`permission`)
/// and by its name (`level`).
fn listing_json(list: &UserListResponse) -> serde_json::Value {
    let users: Vec<serde_json::Value> = list
        .users
        .iter()
        .map(|user| {
            serde_json::json!({
                "username": user.username,
                "permission": user.permission,
                "level": user.permission.name(),
            })
        })
        .collect();
    serde_json::json!({ "users": users })
}

fn password_or_generated(given: Option<String>) -> (String, bool) {
    match given {
        Some(password) => (password, false),
        None => (generate_password(), true),
    }
}

fn report(json: bool, username: &str, what: &str, password: Option<&String>) -> anyhow::Result<()> {
    if json {
        return print_json(&serde_json::json!({
            "username": username,
            "result": what,
            "password": password,
        }));
    }
    println!("{username} {what}");
    if let Some(password) = password {
        println!("password: {password}");
    }
    Ok(())
}
