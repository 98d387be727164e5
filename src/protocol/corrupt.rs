//! `corrupt/prepare` and `corrupt/resend`: a downstream librarian asks for a new
//! copy of a file it found corrupt.

use serde::{Deserialize, Serialize};

/// `corrupt/prepare` request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CorruptionPreparationRequest {
    pub file_name: String,
    /// The librarian asking (its account here is named after it).
    pub librarian_name: String,
}

/// `corrupt/prepare` answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CorruptionPreparationResponse {
    pub ready: bool,
}

/// `corrupt/resend` request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CorruptionResendRequest {
    pub librarian_name: String,
    pub file_name: String,
}

/// `corrupt/resend` answer: the asking librarian's incoming transfer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CorruptionResendResponse {
    pub success: bool,
    pub destination_transfer_id: i64,
}
