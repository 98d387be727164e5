//! `checkin/update` and `checkin/status`: a peer moves, or asks about, transfers it
//! shares with this node. Ids it does not own read as unknown.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::Requester;
use super::incoming::discard;
use crate::db::repo::transfers;
use crate::db::{DbError, Reads};
use crate::model::{Timestamp, TransferStatus};
use crate::node::Node;
use crate::protocol::checkin::{CheckinStatusResponse, CheckinUpdateResponse};

const NO_INCOMING: &str = "No destination transfer with the appropriate ID was found.";
const NO_OUTGOING: &str = "No source transfer with the appropriate ID was found.";
const NOT_YOURS: &str = "You are not authorized to modify the transfer.";

fn not_permitted(from: TransferStatus, to: TransferStatus) -> String {
    format!(
        "Transition from {} to {} is not permitted.",
        from.name(),
        to.name()
    )
}

/// Moves each named transfer to `new_status` where the status machine allows it
/// (`TransferStatus::may_become`); all changes are one transaction. Incoming
/// transfers that close this way lose their staging.
pub async fn update_transfers(
    node: &Arc<Node>,
    requester: Requester<'_>,
    outgoing_ids: Vec<i64>,
    incoming_ids: Vec<i64>,
    new_status: TransferStatus,
) -> Result<CheckinUpdateResponse, DbError> {
    let (username, admin) = (requester.username.to_string(), requester.admin);
    let (response, closed) = node
        .db
        .write(move |txn| {
            let requester = Requester {
                username: &username,
                admin,
            };
            let mut response = CheckinUpdateResponse::default();
            let mut reasons = BTreeSet::new();
            let mut closed = Vec::new();
            for id in incoming_ids {
                let found = match u64::try_from(id) {
                    Ok(key) => transfers::get_incoming(txn, key)?,
                    Err(_) => None,
                };
                let verdict = match found {
                    None => Err(NO_INCOMING.to_string()),
                    Some(t) if !requester.owns_incoming(&t) => Err(NOT_YOURS.to_string()),
                    Some(t) if !t.status.may_become(new_status) => {
                        Err(not_permitted(t.status, new_status))
                    }
                    Some(mut t) => {
                        t.status = new_status;
                        if new_status.is_terminal() {
                            t.end_time = Some(Timestamp::now());
                            closed.push(t.clone());
                        }
                        transfers::put_incoming(txn, &t)?;
                        Ok(())
                    }
                };
                match verdict {
                    Ok(()) => response.modified_destination_transfer_ids.push(id),
                    Err(reason) => {
                        reasons.insert(reason);
                        response.unmodified_destination_transfer_ids.push(id);
                    }
                }
            }
            for id in outgoing_ids {
                let found = match u64::try_from(id) {
                    Ok(key) => transfers::get_outgoing(txn, key)?,
                    Err(_) => None,
                };
                let verdict = match found {
                    None => Err(NO_OUTGOING.to_string()),
                    Some(t) if !requester.owns_outgoing(&t) => Err(NOT_YOURS.to_string()),
                    Some(t) if !t.status.may_become(new_status) => {
                        Err(not_permitted(t.status, new_status))
                    }
                    Some(mut t) => {
                        t.status = new_status;
                        if new_status.is_terminal() {
                            t.end_time = Some(Timestamp::now());
                        }
                        transfers::put_outgoing(txn, &t)?;
                        Ok(())
                    }
                };
                match verdict {
                    Ok(()) => response.modified_source_transfer_ids.push(id),
                    Err(reason) => {
                        reasons.insert(reason);
                        response.unmodified_source_transfer_ids.push(id);
                    }
                }
            }
            response.reasons = reasons.into_iter().collect();
            Ok(Ok::<_, DbError>((response, closed)))
        })
        .await?;
    discard(node, closed).await;
    Ok(response)
}

/// The status of each named transfer, `None` for ids that are unknown or not the
/// requester's.
pub fn status_of(
    node: &Node,
    requester: Requester<'_>,
    outgoing_ids: &[i64],
    incoming_ids: &[i64],
) -> Result<CheckinStatusResponse, DbError> {
    node.db.read(|tx| {
        Ok(CheckinStatusResponse {
            source_transfer_status: outgoing_status(tx, requester, outgoing_ids)?,
            destination_transfer_status: incoming_status(tx, requester, incoming_ids)?,
        })
    })
}

fn outgoing_status(
    tx: &impl Reads,
    requester: Requester<'_>,
    ids: &[i64],
) -> Result<BTreeMap<String, Option<TransferStatus>>, DbError> {
    let mut status = BTreeMap::new();
    for &id in ids {
        let found = match u64::try_from(id) {
            Ok(key) => transfers::get_outgoing(tx, key)?,
            Err(_) => None,
        };
        let visible = found.filter(|t| requester.owns_outgoing(t));
        status.insert(id.to_string(), visible.map(|t| t.status));
    }
    Ok(status)
}

fn incoming_status(
    tx: &impl Reads,
    requester: Requester<'_>,
    ids: &[i64],
) -> Result<BTreeMap<String, Option<TransferStatus>>, DbError> {
    let mut status = BTreeMap::new();
    for &id in ids {
        let found = match u64::try_from(id) {
            Ok(key) => transfers::get_incoming(tx, key)?,
            Err(_) => None,
        };
        let visible = found.filter(|t| requester.owns_incoming(t));
        status.insert(id.to_string(), visible.map(|t| t.status));
    }
    Ok(status)
}
