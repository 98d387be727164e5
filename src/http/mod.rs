//! The HTTP API: the Librarian v2 routes plus quire's additions, over axum/hyper.
//!
//! Only this module knows about status codes and JSON bodies (`error` maps every
//! failure to its answer). Handlers check the caller's level first, then decode the
//! body, then call into `ingest`, `db` or `integrity`.

pub mod auth;
pub mod error;
pub mod json;
mod routes;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::node::Node;
use routes::{
    admin, batch_put, checkin, clone, errors, librarians, manifest, ping, search, tasks, upload,
    users, validate,
};

/// Every route of the API.
pub fn router(node: Arc<Node>) -> Router {
    let api = Router::new()
        .route("/ping", post(ping::redirect).get(ping::redirect))
        .route("/ping/", post(ping::ping))
        .route("/ping/logged", post(ping::logged))
        .route("/ping/admin", post(ping::admin))
        .route("/upload/stage", post(upload::stage))
        .route("/upload/commit", post(upload::commit))
        .route("/upload/batch_stage", post(upload::batch_stage))
        .route("/upload/batch_commit", post(upload::batch_commit))
        .route(
            "/upload/batch_put",
            axum::routing::put(batch_put::batch_put),
        )
        .route(
            "/upload/stream/{transfer_id}",
            get(upload::stream_status).put(upload::stream_upload),
        )
        .route("/search/file", post(search::file))
        .route("/search/instance_local", post(search::instance_local))
        .route("/search/instance_remote", post(search::instance_remote))
        .route("/search/error", post(errors::search))
        .route("/error/clear", post(errors::clear))
        .route("/validate/file", post(validate::file))
        .route("/users/create", post(users::create))
        .route("/users/update", post(users::update))
        .route("/users/delete", post(users::delete))
        .route("/users/get", post(users::get))
        .route("/users/list", post(users::list))
        .route("/users/password_update", post(users::password_update))
        .route("/admin/stores/list", post(admin::store_list))
        .route(
            "/admin/stores/state_change",
            post(admin::store_state_change),
        )
        .route("/admin/add_file", post(admin::add_file))
        .route("/admin/instance/delete_local", post(admin::delete_local))
        .route("/admin/instance/delete_remote", post(admin::delete_remote))
        .route("/admin/stores/manifest", post(manifest::store_manifest))
        .route("/clone/stage", post(clone::stage))
        .route("/clone/ongoing", post(clone::ongoing))
        .route("/clone/staged", post(clone::staged))
        .route("/clone/complete", post(clone::complete))
        .route("/clone/fail", post(clone::fail))
        .route("/checkin/update", post(checkin::update))
        .route("/checkin/status", post(checkin::status))
        .route("/admin/tasks/list", post(tasks::list))
        .route("/admin/tasks/run", post(tasks::run))
        .route("/admin/librarians/add", post(librarians::add))
        .route("/admin/librarians/list", post(librarians::list))
        .route("/admin/librarians/remove", post(librarians::remove))
        .route(
            "/admin/librarians/transfer_status/change",
            post(librarians::transfer_status_change),
        )
        // The reference client posts here (a route its server lacks).
        .route(
            "/admin/librarians/transfer_status/set",
            post(librarians::transfer_status_change),
        );
    Router::new()
        .nest(crate::protocol::API_PREFIX, api)
        .layer(TraceLayer::new_for_http())
        .layer(SetResponseHeaderLayer::overriding(
            header::SERVER,
            HeaderValue::from_static(concat!("quire/", env!("CARGO_PKG_VERSION"))),
        ))
        .with_state(node)
}

/// Serves the API on `listener` until `shutdown` resolves, then lets requests in
/// flight finish (for at most `grace`).
pub async fn serve(
    listener: TcpListener,
    node: Arc<Node>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> std::io::Result<()> {
    let (stopped_tx, stopped_rx) = tokio::sync::oneshot::channel::<()>();
    let server = axum::serve(listener, router(node)).with_graceful_shutdown(async move {
        shutdown.await;
        let _ = stopped_tx.send(());
    });
    tokio::select! {
        result = server => result,
        _ = async {
            let _ = stopped_rx.await;
            tokio::time::sleep(grace).await;
        } => {
            tracing::warn!("requests still running after the shutdown grace period; stopping anyway");
            Ok(())
        }
    }
}
