//! `checkin/update` and `checkin/status`: peers move each other's transfers along the
//! status machine and ask where they are.
//!
//! In both routes `source_transfer_ids` name the answering node's *outgoing*
//! transfers and `destination_transfer_ids` its *incoming* ones.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::TransferStatus;

/// `checkin/update` request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckinUpdateRequest {
    pub source_transfer_ids: Vec<i64>,
    pub destination_transfer_ids: Vec<i64>,
    pub new_status: TransferStatus,
}

/// `checkin/update` answer: which transfers changed, which did not, and why not.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CheckinUpdateResponse {
    pub modified_source_transfer_ids: Vec<i64>,
    pub modified_destination_transfer_ids: Vec<i64>,
    pub unmodified_source_transfer_ids: Vec<i64>,
    pub unmodified_destination_transfer_ids: Vec<i64>,
    /// Each distinct reason once.
    pub reasons: Vec<String>,
}

/// `checkin/status` request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckinStatusRequest {
    pub source_transfer_ids: Vec<i64>,
    pub destination_transfer_ids: Vec<i64>,
}

/// `checkin/status` answer: per id (as a JSON object key), its status, or `null`
/// when the transfer is unknown or not the caller's.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CheckinStatusResponse {
    pub source_transfer_status: BTreeMap<String, Option<TransferStatus>>,
    pub destination_transfer_status: BTreeMap<String, Option<TransferStatus>>,
}
