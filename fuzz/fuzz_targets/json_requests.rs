//! Fuzzes the decoding of every route's JSON request body through the server's own
//! decoder (`http::json::parse`): it must answer Ok or a 422-style error, never
//! panic, and whatever it accepts must survive re-encoding and decoding again.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use quire::http::json::parse;
use quire::protocol::{
    admin, checkin, clone, errors, librarians, manifest, ping, search, tasks, upload, users,
    validate,
};

/// Decodes `body` as `T`; an accepted body must round-trip.
fn check<T>(body: &Bytes)
where
    T: serde::de::DeserializeOwned + serde::Serialize,
{
    if let Ok(value) = parse::<T>(body) {
        let again = serde_json::to_vec(&value).expect("a decoded request re-encodes");
        if let Err(error) = parse::<T>(&Bytes::from(again)) {
            panic!("a re-encoded request no longer decodes: {error:?}");
        }
    }
}

macro_rules! routes {
    ($selector:expr, $body:expr, $($kind:ty),+ $(,)?) => {{
        let kinds: &[fn(&Bytes)] = &[$(check::<$kind>),+];
        kinds[$selector as usize % kinds.len()]($body);
    }};
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let body = Bytes::copy_from_slice(body);
    routes!(
        selector,
        &body,
        ping::PingRequest,
        upload::UploadInitiationRequest,
        upload::UploadCompletionRequest,
        upload::UploadBatchStageRequest,
        upload::UploadBatchCommitRequest,
        upload::UploadBatchPutManifest,
        search::FileSearchRequest,
        search::InstanceSearchRequest,
        search::RemoteInstanceSearchRequest,
        errors::ErrorSearchRequest,
        errors::ErrorClearRequest,
        validate::FileValidationRequest,
        users::UserCreationRequest,
        users::UserUpdateRequest,
        users::UsernameRequest,
        users::PasswordChangeRequest,
        admin::StoreStateChangeRequest,
        admin::AddFileRequest,
        admin::DeleteInstanceRequest,
        manifest::StoreManifestRequest,
        clone::CloneInitiationRequest,
        clone::CloneIds,
        clone::CloneCompleteRequest,
        clone::CloneFailRequest,
        checkin::CheckinUpdateRequest,
        checkin::CheckinStatusRequest,
        tasks::TaskRunRequest,
        librarians::AddLibrarianRequest,
        librarians::ListLibrariansRequest,
        librarians::RemoveLibrarianRequest,
        librarians::LibrarianTransferStatus,
        clone::CloneBatchInitiationRequest,
    );
});
