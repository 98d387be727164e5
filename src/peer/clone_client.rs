//! Client methods for the clone, check-in and manifest routes.

use super::{LibrarianClient, PeerError};
use crate::protocol::checkin::{
    CheckinStatusRequest, CheckinStatusResponse, CheckinUpdateRequest, CheckinUpdateResponse,
};
use crate::protocol::clone::{
    CloneBatchCompleteRequest, CloneBatchCompleteResponse, CloneBatchInitiationRequest,
    CloneBatchInitiationResponse, CloneCompleteRequest, CloneCompleteResponse, CloneFailRequest,
    CloneFailResponse, CloneIds, CloneInitiationRequest, CloneInitiationResponse,
    CloneStagedResponse,
};
use crate::protocol::corrupt::{
    CorruptionPreparationRequest, CorruptionPreparationResponse, CorruptionResendRequest,
    CorruptionResendResponse,
};
use crate::protocol::manifest::{StoreManifestRequest, StoreManifestResponse};

impl LibrarianClient {
    /// `clone/stage`.
    pub async fn clone_stage(
        &self,
        request: &CloneInitiationRequest,
    ) -> Result<CloneInitiationResponse, PeerError> {
        self.post("clone/stage", request).await
    }

    /// `clone/batch_stage`.
    pub async fn clone_batch_stage(
        &self,
        request: &CloneBatchInitiationRequest,
    ) -> Result<CloneBatchInitiationResponse, PeerError> {
        self.post("clone/batch_stage", request).await
    }

    /// `clone/batch_complete` (quire).
    pub async fn clone_batch_complete(
        &self,
        request: &CloneBatchCompleteRequest,
    ) -> Result<CloneBatchCompleteResponse, PeerError> {
        self.post("clone/batch_complete", request).await
    }

    /// `corrupt/prepare`.
    pub async fn corrupt_prepare(
        &self,
        request: &CorruptionPreparationRequest,
    ) -> Result<CorruptionPreparationResponse, PeerError> {
        self.post("corrupt/prepare", request).await
    }

    /// `corrupt/resend`.
    pub async fn corrupt_resend(
        &self,
        request: &CorruptionResendRequest,
    ) -> Result<CorruptionResendResponse, PeerError> {
        self.post("corrupt/resend", request).await
    }

    /// `clone/ongoing`.
    pub async fn clone_ongoing(&self, ids: CloneIds) -> Result<CloneIds, PeerError> {
        self.post("clone/ongoing", &ids).await
    }

    /// `clone/staged`.
    pub async fn clone_staged(&self, ids: CloneIds) -> Result<CloneStagedResponse, PeerError> {
        self.post("clone/staged", &ids).await
    }

    /// `clone/complete`.
    pub async fn clone_complete(
        &self,
        request: &CloneCompleteRequest,
    ) -> Result<CloneCompleteResponse, PeerError> {
        self.post("clone/complete", request).await
    }

    /// `clone/fail`.
    pub async fn clone_fail(
        &self,
        request: &CloneFailRequest,
    ) -> Result<CloneFailResponse, PeerError> {
        self.post("clone/fail", request).await
    }

    /// `checkin/update`.
    pub async fn checkin_update(
        &self,
        request: &CheckinUpdateRequest,
    ) -> Result<CheckinUpdateResponse, PeerError> {
        self.post("checkin/update", request).await
    }

    /// `checkin/status`.
    pub async fn checkin_status(
        &self,
        request: &CheckinStatusRequest,
    ) -> Result<CheckinStatusResponse, PeerError> {
        self.post("checkin/status", request).await
    }

    /// `admin/stores/manifest`.
    pub async fn store_manifest(
        &self,
        request: &StoreManifestRequest,
    ) -> Result<StoreManifestResponse, PeerError> {
        self.post("admin/stores/manifest", request).await
    }
}
