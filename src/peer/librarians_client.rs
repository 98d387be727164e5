//! Client methods for the peer-registry routes (`admin/librarians/*`).

use super::{LibrarianClient, PeerError};
use crate::protocol::librarians::{
    AddLibrarianRequest, AddLibrarianResponse, LibrarianMaxRate, LibrarianTransferStatus,
    ListLibrariansRequest, ListLibrariansResponse, RemoveLibrarianRequest, RemoveLibrarianResponse,
};
use crate::protocol::transfers::{TransferSummaryRequest, TransferSummaryResponse};

impl LibrarianClient {
    /// `admin/librarians/list`; with `ping`, the node pings every peer first.
    pub async fn list_librarians(&self, ping: bool) -> Result<ListLibrariansResponse, PeerError> {
        self.post("admin/librarians/list", &ListLibrariansRequest { ping })
            .await
    }

    /// `admin/librarians/add`.
    pub async fn add_librarian(
        &self,
        request: &AddLibrarianRequest,
    ) -> Result<AddLibrarianResponse, PeerError> {
        self.post("admin/librarians/add", request).await
    }

    /// `admin/librarians/remove`.
    pub async fn remove_librarian(
        &self,
        librarian_name: &str,
        remove_outgoing_transfers: bool,
    ) -> Result<RemoveLibrarianResponse, PeerError> {
        let request = RemoveLibrarianRequest {
            librarian_name: librarian_name.to_string(),
            remove_outgoing_transfers,
        };
        self.post("admin/librarians/remove", &request).await
    }

    /// `admin/librarians/transfer_status/change`.
    pub async fn set_librarian_transfers(
        &self,
        librarian_name: &str,
        transfers_enabled: bool,
    ) -> Result<LibrarianTransferStatus, PeerError> {
        let request = LibrarianTransferStatus {
            librarian_name: librarian_name.to_string(),
            transfers_enabled,
        };
        self.post("admin/librarians/transfer_status/change", &request)
            .await
    }

    /// `admin/librarians/max_rate` (quire); `None` lifts the cap.
    pub async fn set_librarian_max_rate(
        &self,
        librarian_name: &str,
        max_rate: Option<u64>,
    ) -> Result<LibrarianMaxRate, PeerError> {
        let request = LibrarianMaxRate {
            librarian_name: librarian_name.to_string(),
            max_rate,
        };
        self.post("admin/librarians/max_rate", &request).await
    }

    /// `admin/transfers/summary` (quire).
    pub async fn transfer_summary(
        &self,
        request: &TransferSummaryRequest,
    ) -> Result<TransferSummaryResponse, PeerError> {
        self.post("admin/transfers/summary", request).await
    }
}
