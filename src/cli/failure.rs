//! How a failed command is reported: one error sentence and, where we know one, what
//! to do about it, as text on stderr or (with `--json`) as `{"error", "remedy"}` on
//! stdout, unless the command printed its own JSON report there already. Both
//! forms exit with status 1.
//!
//! Subcommands return `anyhow::Error`s; a [`Failure`] inside one carries the remedy,
//! and a refusal from the node ([`PeerError::Refused`]) is told as the command the
//! user ran, never as the protocol route it used.

use std::fmt;
use std::process::ExitCode;

use serde::Serialize;

use super::output;
use crate::peer::PeerError;

/// A command's failure: what went wrong and what to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// What went wrong, as one sentence without a trailing remedy.
    pub error: String,
    /// What the user can do about it, if anything is known.
    pub remedy: Option<String>,
}

impl Failure {
    /// A failure without a remedy yet.
    pub fn new(error: impl Into<String>) -> Failure {
        Failure {
            error: error.into(),
            remedy: None,
        }
    }

    /// The same failure with this remedy.
    pub fn remedy(mut self, remedy: impl Into<String>) -> Failure {
        self.remedy = Some(remedy.into());
        self
    }

    /// The failure an error chain describes. Each link's message joins the error as
    /// `{:#}` would join them, except that a refusal by the node is told by its
    /// reason and status; the remedy is the outermost one found.
    pub fn from_error(error: &anyhow::Error) -> Failure {
        let mut parts: Vec<String> = Vec::new();
        // A Failure given as context is no chain link of its own type; anyhow
        // finds the outermost one.
        let mut remedy = error
            .downcast_ref::<Failure>()
            .and_then(|failure| failure.remedy.clone());
        for link in error.chain() {
            let (text, found) = if let Some(failure) = link.downcast_ref::<Failure>() {
                (failure.error.clone(), failure.remedy.clone())
            } else if let Some(peer) = link.downcast_ref::<PeerError>() {
                describe_peer_error(peer)
            } else {
                (link.to_string(), None)
            };
            remedy = remedy.or(found);
            // A link whose message already contains the next one's adds nothing.
            if !parts.last().is_some_and(|last| last.ends_with(&text)) {
                parts.push(text);
            }
        }
        Failure {
            error: parts.join(": "),
            remedy,
        }
    }

    /// The text form, for stderr: `quire users create: error: ...` and a remedy
    /// line.
    pub fn to_text(&self, command: &str) -> String {
        let mut text = format!("{command}: error: {}", self.error);
        if let Some(remedy) = &self.remedy {
            text.push_str(&format!("\n{command}: remedy: {remedy}"));
        }
        text
    }

    /// The JSON form, for stdout: `{"error", "remedy", "command"}`.
    pub fn to_json(&self, command: &str) -> String {
        #[derive(Serialize)]
        struct Reported<'a> {
            error: &'a str,
            remedy: Option<&'a str>,
            command: &'a str,
        }
        let reported = Reported {
            error: &self.error,
            remedy: self.remedy.as_deref(),
            command,
        };
        serde_json::to_string_pretty(&reported).expect("strings serialize")
    }
}

/// The error alone: the remedy is told apart (`to_text`, `to_json`).
impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.error)
    }
}

impl std::error::Error for Failure {}

/// Reports a failed command: as text on stderr, or with `json` as JSON on stdout.
/// Stdout holds one JSON document: when the command already printed its own (a
/// report that says what failed), the failure goes to stderr as text. The exit
/// status is 1 either way.
pub fn report(error: &anyhow::Error, command: &str, json: bool) -> ExitCode {
    let failure = Failure::from_error(error);
    if json && !output::json_was_printed() {
        println!("{}", failure.to_json(command));
    } else {
        eprintln!("{}", failure.to_text(command));
    }
    ExitCode::FAILURE
}

/// A node's error told to a CLI user: its reason and status, and its remedy or,
/// where it gave none, ours.
fn describe_peer_error(error: &PeerError) -> (String, Option<String>) {
    match error {
        PeerError::Refused {
            status,
            reason,
            remedy,
            ..
        } => {
            let text = format!("{reason} (HTTP {status})");
            let remedy = if remedy.is_empty() {
                default_remedy(status.as_u16())
            } else {
                Some(remedy.clone())
            };
            (text, remedy)
        }
        PeerError::Unreachable { url, message } => (
            format!("cannot reach the node at {url}: {message}"),
            Some(
                "check that the node runs (`quire serve`) and that --url (QUIRE_URL) or \
                 --connection names it"
                    .into(),
            ),
        ),
        PeerError::Decode { message, .. } => (
            format!("the node's answer was not understood: {message}"),
            Some("check that --url names a quire node or a Librarian server".into()),
        ),
        other => (other.to_string(), None),
    }
}

/// What to do about a refusal that came without a remedy.
fn default_remedy(status: u16) -> Option<String> {
    let text = match status {
        401 => {
            "check the account and password (--user and --password, QUIRE_USER and \
             QUIRE_PASSWORD, or --connection); `quire ping` shows what the account may do"
        }
        403 => "ask an administrator for an account with a higher level",
        413 => "the node refuses data this large (its maximal_upload_size_bytes)",
        500..=599 => "the node failed; its log has the details",
        _ => return None,
    };
    Some(text.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::StatusCode;

    #[test]
    fn a_refusal_is_told_by_reason_and_status_not_by_route() {
        let refused = PeerError::Refused {
            route: "admin/librarians/add".into(),
            status: StatusCode::BAD_REQUEST,
            reason: "Librarian site-b already exists.".into(),
            remedy: "Remove it first.".into(),
        };
        let failure = Failure::from_error(&anyhow::Error::new(refused));
        assert_eq!(
            failure.error,
            "Librarian site-b already exists. (HTTP 400 Bad Request)"
        );
        assert_eq!(failure.remedy.as_deref(), Some("Remove it first."));
        assert!(!failure.to_text("quire librarians add").contains("admin/"));
    }

    #[test]
    fn context_joins_the_chain_and_the_outer_remedy_wins() {
        let inner = anyhow::Error::new(Failure::new("inner").remedy("inner remedy"));
        let outer = inner.context(Failure::new("outer").remedy("outer remedy"));
        let failure = Failure::from_error(&outer);
        assert_eq!(failure.error, "outer: inner");
        assert_eq!(failure.remedy.as_deref(), Some("outer remedy"));
        let plain = anyhow::anyhow!("plain").context("context");
        assert_eq!(Failure::from_error(&plain), Failure::new("context: plain"));
    }

    #[test]
    fn an_unauthorised_refusal_without_remedy_gets_ours() {
        let refused = PeerError::Refused {
            route: "users/create".into(),
            status: StatusCode::UNAUTHORIZED,
            reason: "Incorrect username or password".into(),
            remedy: String::new(),
        };
        let failure = Failure::from_error(&anyhow::Error::new(refused));
        let json: serde_json::Value =
            serde_json::from_str(&failure.to_json("quire users create")).unwrap();
        assert_eq!(json["command"], "quire users create");
        assert!(json["error"].as_str().unwrap().contains("HTTP 401"));
        assert!(json["remedy"].as_str().unwrap().contains("--password"));
    }
}
