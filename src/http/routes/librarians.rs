//! `admin/librarians/add`, `list`, `remove` and `transfer_status/change` (ADMIN):
//! the registry of peer librarians, whose credentials are sealed at rest.
//!
//! Wire behaviour follows the reference: adding an existing name answers
//! `success: false, already_exists: true` and changes nothing; with
//! `check_connection` the peer must answer `ping/` or nothing is added; `available`
//! in the list is the answer to a `ping/` (null without `ping`). Fix: an unknown
//! name is a 400 with a reason on every route. Addition: when the peer answered,
//! `add` also says whether it accepted the credentials (`credentials_accepted`).

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use futures_util::future::join_all;

use crate::db::repo::librarians;
use crate::http::auth::Caller;
use crate::http::error::{ApiError, ApiResult};
use crate::http::json::Body;
use crate::model::{AuthLevel, Librarian, Timestamp};
use crate::node::Node;
use crate::peer::changes::{self, RemovedPeer};
use crate::peer::registry::{client_for_peer, connect, ping_peer};
use crate::peer::{check_peer_name, peer_base_url, split_authenticator};
use crate::protocol::librarians::{
    AddLibrarianRequest, AddLibrarianResponse, LibrarianListItem, LibrarianMaxRate,
    LibrarianTransferStatus, ListLibrariansRequest, ListLibrariansResponse, RemoveLibrarianRequest,
    RemoveLibrarianResponse,
};

/// How long each best-effort notice to a removed peer may take.
const NOTICE_TIMEOUT: Duration = Duration::from_secs(30);

fn unknown_peer(name: &str, remedy: &str) -> ApiError {
    ApiError::bad_request(format!("Librarian {name} does not exist."), remedy)
}

/// `admin/librarians/add`.
pub async fn add(
    State(node): State<Arc<Node>>,
    caller: Caller,
    Body(request): Body<AddLibrarianRequest>,
) -> ApiResult<Json<AddLibrarianResponse>> {
    caller.require(AuthLevel::Admin)?;
    let name = request.librarian_name.clone();
    check_peer_name(&name).map_err(|reason| {
        ApiError::bad_request(reason, "Use the name the peer is known by (its `name`).")
    })?;
    let base_url = peer_base_url(&request.url, request.port).map_err(|reason| {
        ApiError::bad_request(
            reason,
            "Give the URL as scheme://host (e.g. https://peer.example.org) and the port \
             in `port`.",
        )
    })?;
    let (user, password) = split_authenticator(&request.authenticator).ok_or_else(|| {
        ApiError::bad_request(
            "Librarian authenticator must be user:password.",
            "Send the account this node logs in with on the peer, as user:password.",
        )
    })?;
    let refused = |already_exists: bool, ping_success: Option<bool>| {
        Json(AddLibrarianResponse {
            success: false,
            already_exists,
            ping_success,
            credentials_accepted: None,
        })
    };
    let peers = node.db.read(librarians::all_librarians)?;
    if peers.iter().any(|peer| peer.name == name) {
        return Ok(refused(true, Some(false)));
    }
    let (ping_success, credentials_accepted, last_seen) = if request.check_connection {
        let client = connect(&node, base_url, user, password)
            .map_err(|e| ApiError::internal("cannot build a client for the peer", e))?;
        let pinged = ping_peer(&name, &client).await;
        if !pinged.answered {
            tracing::warn!(peer = %name, url = %request.url, port = request.port, "peer not added: it did not answer ping/");
            return Ok(refused(false, Some(false)));
        }
        (
            Some(true),
            pinged.credentials_accepted,
            Some(Timestamp::now()),
        )
    } else {
        (None, None, None)
    };
    let sealed_peers_exist = peers.iter().any(|p| !p.sealed_authenticator.is_empty());
    let key = node
        .peer_keyring
        .key_for_sealing(sealed_peers_exist)
        .map_err(|e| {
            tracing::error!(error = %e, "cannot seal a peer's credentials");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                e.to_string(),
                "Ask the node's operator to restore the peer key file.",
            )
        })?;
    let peer = Librarian {
        id: 0,
        name: name.clone(),
        url: request.url.clone(),
        port: request.port as u16,
        sealed_authenticator: key.seal(&name, &request.authenticator),
        last_seen,
        transfers_enabled: true,
    };
    let max_rate = request.max_rate.filter(|rate| *rate > 0);
    let added = node
        .db
        .write(move |txn| {
            let added = changes::insert_peer(txn, peer.clone())?;
            if added {
                librarians::set_max_rate(txn, &peer.name, max_rate)?;
            }
            Ok(Ok::<_, ApiError>(added))
        })
        .await?;
    if !added {
        return Ok(refused(true, Some(false)));
    }
    tracing::info!(peer = %name, url = %request.url, port = request.port, by = %caller.username, "peer librarian added");
    Ok(Json(AddLibrarianResponse {
        success: true,
        already_exists: false,
        ping_success,
        credentials_accepted,
    }))
}

/// `admin/librarians/list`: every peer by name; with `ping`, all are pinged at once.
pub async fn list(
    State(node): State<Arc<Node>>,
    caller: Caller,
    Body(request): Body<ListLibrariansRequest>,
) -> ApiResult<Json<ListLibrariansResponse>> {
    caller.require(AuthLevel::Admin)?;
    let (peers, rates) = node.db.read(|tx| {
        let peers = librarians::all_librarians(tx)?;
        let rates = peers
            .iter()
            .map(|peer| librarians::max_rate(tx, &peer.name))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((peers, rates))
    })?;
    let available: Vec<Option<bool>> = if request.ping {
        join_all(peers.iter().map(|peer| ping_known(&node, peer))).await
    } else {
        vec![None; peers.len()]
    };
    let librarians = peers
        .into_iter()
        .zip(available)
        .zip(rates)
        .map(|((peer, available), max_rate)| LibrarianListItem {
            name: peer.name,
            url: peer.url,
            port: peer.port,
            available,
            enabled: peer.transfers_enabled,
            max_rate,
        })
        .collect();
    Ok(Json(ListLibrariansResponse { librarians }))
}

/// Pings a known peer with its own credentials; a peer this node cannot build a
/// client for (e.g. its credentials cannot be unsealed) counts as unavailable.
async fn ping_known(node: &Node, peer: &Librarian) -> Option<bool> {
    match client_for_peer(node, peer) {
        Ok(client) => Some(ping_peer(&peer.name, &client).await.answered),
        Err(error) => {
            tracing::error!(peer = %peer.name, %error, "cannot ping the peer");
            Some(false)
        }
    }
}

/// `admin/librarians/remove`. Live outgoing transfers to the peer are cancelled
/// only with `remove_outgoing_transfers` (then the peer is told, best effort, with
/// `clone/fail`); otherwise they are kept, as the reference does, and go on if the
/// peer is added again.
pub async fn remove(
    State(node): State<Arc<Node>>,
    caller: Caller,
    Body(request): Body<RemoveLibrarianRequest>,
) -> ApiResult<Json<RemoveLibrarianResponse>> {
    caller.require(AuthLevel::Admin)?;
    let name = request.librarian_name.clone();
    let cancel = request.remove_outgoing_transfers;
    let removed = node
        .db
        .write(move |txn| {
            Ok(Ok::<_, ApiError>(changes::remove_peer(
                txn,
                &name,
                cancel,
                Timestamp::now(),
            )?))
        })
        .await?;
    let Some(removed) = removed else {
        return Err(unknown_peer(
            &request.librarian_name,
            "Check the name with `quire librarians list`; there is nothing to remove.",
        ));
    };
    let count = removed.cancelled.len() as u64;
    tracing::info!(peer = %removed.peer.name, cancelled = count, by = %caller.username, "peer librarian removed");
    if !removed.cancelled.is_empty() {
        tokio::spawn(tell_peer_of_cancellations(node.clone(), removed));
    }
    Ok(Json(RemoveLibrarianResponse {
        success: true,
        number_of_transfers_removed: count,
    }))
}

/// Asks the removed peer to fail its side of each cancelled transfer, so it does
/// not wait for bytes that will never come. Failures are only logged: the peer's
/// own hypervisor cleans up stale transfers in the end.
async fn tell_peer_of_cancellations(node: Arc<Node>, removed: RemovedPeer) {
    let peer = &removed.peer.name;
    let client = match client_for_peer(&node, &removed.peer) {
        Ok(client) => client,
        Err(error) => {
            tracing::warn!(%peer, %error, "cannot tell the removed peer of cancelled transfers");
            return;
        }
    };
    for transfer in &removed.cancelled {
        let Some(remote_id) = transfer.remote_transfer_id else {
            continue;
        };
        let body = serde_json::json!({
            "source_transfer_id": transfer.id,
            "destination_transfer_id": remote_id,
            "reason": "The sending librarian removed this peer and cancelled the transfer.",
        });
        let call = client.post::<_, serde_json::Value>("clone/fail", &body);
        match tokio::time::timeout(NOTICE_TIMEOUT, call).await {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => {
                tracing::warn!(%peer, transfer = transfer.id, %error, "peer did not take the cancellation");
            }
            Err(_) => {
                tracing::warn!(%peer, transfer = transfer.id, "peer did not answer the cancellation in time");
            }
        }
    }
}

/// `admin/librarians/transfer_status/change`.
pub async fn transfer_status_change(
    State(node): State<Arc<Node>>,
    caller: Caller,
    Body(request): Body<LibrarianTransferStatus>,
) -> ApiResult<Json<LibrarianTransferStatus>> {
    caller.require(AuthLevel::Admin)?;
    let name = request.librarian_name.clone();
    let enabled = request.transfers_enabled;
    let changed = node
        .db
        .write(move |txn| {
            Ok(Ok::<_, ApiError>(changes::set_transfers_enabled(
                txn, &name, enabled,
            )?))
        })
        .await?;
    let Some(peer) = changed else {
        return Err(unknown_peer(
            &request.librarian_name,
            "Check the name with `quire librarians list`, or add the peer first.",
        ));
    };
    tracing::info!(peer = %peer.name, enabled, by = %caller.username, "peer transfer status changed");
    Ok(Json(LibrarianTransferStatus {
        librarian_name: peer.name,
        transfers_enabled: peer.transfers_enabled,
    }))
}

/// `admin/librarians/max_rate` (quire): sets or lifts the cap on bytes per second
/// sent to a peer. It applies from the next batch sent.
pub async fn max_rate(
    State(node): State<Arc<Node>>,
    caller: Caller,
    Body(request): Body<LibrarianMaxRate>,
) -> ApiResult<Json<LibrarianMaxRate>> {
    caller.require(AuthLevel::Admin)?;
    let name = request.librarian_name.clone();
    let rate = request.max_rate.filter(|rate| *rate > 0);
    let known = node
        .db
        .write(move |txn| {
            if librarians::get_librarian(txn, &name)?.is_none() {
                return Ok(Ok::<_, ApiError>(false));
            }
            librarians::set_max_rate(txn, &name, rate)?;
            Ok(Ok(true))
        })
        .await?;
    if !known {
        return Err(unknown_peer(
            &request.librarian_name,
            "Check the name with `quire librarians list`, or add the peer first.",
        ));
    }
    tracing::info!(peer = %request.librarian_name, max_rate = ?rate, by = %caller.username, "peer rate cap changed");
    Ok(Json(LibrarianMaxRate {
        librarian_name: request.librarian_name,
        max_rate: rate,
    }))
}
