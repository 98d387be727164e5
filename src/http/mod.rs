//! The HTTP API: the Librarian v2 routes plus quire's additions, over axum/hyper.
//!
//! Only this module knows about status codes and JSON bodies (`error` maps every
//! failure to its answer). Each route's level is checked by a route layer before
//! its handler runs (so before any body is read); handlers then decode the body and
//! call into `ingest`, `db` or `integrity`. `server.rs` is the accept loop (timeouts,
//! the connection cap), `body_timeout.rs` the idle timeout of request bodies.

pub mod auth;
pub mod body_timeout;
pub mod error;
pub mod json;
mod routes;
mod server;
pub mod tls;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::middleware::from_fn_with_state;
use axum::routing::{MethodRouter, get, post, put};
use tokio::net::TcpListener;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::model::AuthLevel;
use crate::node::Node;
use routes::{
    admin, batch_put, checkin, clone, corrupt, errors, librarians, manifest, ping, search, tasks,
    transfers, upload, users, validate,
};

/// Every route of the API, each behind its level: the caller is authenticated and
/// its level checked (`auth::require_level`) before the handler reads the body.
pub fn router(node: Arc<Node>) -> Router {
    use AuthLevel::{Admin, Callback, None, ReadAppend, ReadOnly};
    let at = |level: AuthLevel, route: MethodRouter<Arc<Node>>| {
        route.route_layer(from_fn_with_state(
            (node.clone(), level),
            auth::require_level,
        ))
    };
    let api = Router::new()
        .route("/ping", post(ping::redirect).get(ping::redirect))
        .route("/ping/", at(None, post(ping::ping)))
        .route("/ping/logged", at(ReadOnly, post(ping::logged)))
        .route("/ping/admin", at(Admin, post(ping::admin)))
        .route("/upload/stage", at(ReadAppend, post(upload::stage)))
        .route("/upload/commit", at(ReadAppend, post(upload::commit)))
        .route(
            "/upload/batch_stage",
            at(ReadAppend, post(upload::batch_stage)),
        )
        .route(
            "/upload/batch_commit",
            at(ReadAppend, post(upload::batch_commit)),
        )
        .route(
            "/upload/batch_put",
            at(ReadAppend, put(batch_put::batch_put)),
        )
        .route(
            "/upload/stream_batch",
            at(ReadAppend, put(upload::stream_batch)),
        )
        .route(
            "/upload/stream/{transfer_id}",
            at(
                ReadAppend,
                get(upload::stream_status).put(upload::stream_upload),
            ),
        )
        .route("/search/file", at(ReadOnly, post(search::file)))
        .route(
            "/search/instance_local",
            at(Admin, post(search::instance_local)),
        )
        .route(
            "/search/instance_remote",
            at(Admin, post(search::instance_remote)),
        )
        .route("/search/error", at(Admin, post(errors::search)))
        .route("/error/clear", at(Admin, post(errors::clear)))
        .route("/validate/file", at(ReadOnly, post(validate::file)))
        .route("/users/create", at(Admin, post(users::create)))
        .route("/users/update", at(Admin, post(users::update)))
        .route("/users/delete", at(Admin, post(users::delete)))
        .route("/users/get", at(Admin, post(users::get)))
        .route("/users/list", at(Admin, post(users::list)))
        .route(
            "/users/password_update",
            at(ReadOnly, post(users::password_update)),
        )
        .route("/admin/stores/list", at(Admin, post(admin::store_list)))
        .route(
            "/admin/stores/state_change",
            at(Admin, post(admin::store_state_change)),
        )
        .route("/admin/add_file", at(Admin, post(admin::add_file)))
        .route(
            "/admin/instance/delete_local",
            at(Admin, post(admin::delete_local)),
        )
        .route(
            "/admin/instance/delete_remote",
            at(Admin, post(admin::delete_remote)),
        )
        .route(
            "/admin/stores/manifest",
            at(Admin, post(manifest::store_manifest)),
        )
        .route("/clone/stage", at(ReadAppend, post(clone::stage)))
        .route(
            "/clone/batch_stage",
            at(ReadAppend, post(clone::batch_stage)),
        )
        .route("/clone/ongoing", at(ReadAppend, post(clone::ongoing)))
        .route("/clone/staged", at(Callback, post(clone::staged)))
        .route("/clone/complete", at(Callback, post(clone::complete)))
        .route(
            "/clone/batch_complete",
            at(Callback, post(clone::batch_complete)),
        )
        .route("/clone/fail", at(ReadAppend, post(clone::fail)))
        .route("/checkin/update", at(Callback, post(checkin::update)))
        .route("/checkin/status", at(Callback, post(checkin::status)))
        .route("/corrupt/prepare", at(Callback, post(corrupt::prepare)))
        .route("/corrupt/resend", at(Callback, post(corrupt::resend)))
        .route("/admin/tasks/list", at(Admin, post(tasks::list)))
        .route("/admin/tasks/run", at(Admin, post(tasks::run)))
        .route("/admin/librarians/add", at(Admin, post(librarians::add)))
        .route("/admin/librarians/list", at(Admin, post(librarians::list)))
        .route(
            "/admin/librarians/remove",
            at(Admin, post(librarians::remove)),
        )
        .route(
            "/admin/librarians/transfer_status/change",
            at(Admin, post(librarians::transfer_status_change)),
        )
        .route(
            "/admin/librarians/max_rate",
            at(Admin, post(librarians::max_rate)),
        )
        .route(
            "/admin/transfers/summary",
            at(Admin, post(transfers::summary)),
        )
        // The reference client posts here (a route its server lacks).
        .route(
            "/admin/librarians/transfer_status/set",
            at(Admin, post(librarians::transfer_status_change)),
        );
    Router::new()
        .nest(crate::protocol::API_PREFIX, api)
        .layer(axum::middleware::from_fn(
            body_timeout::answer_stalls_with_408,
        ))
        .layer(TraceLayer::new_for_http())
        .layer(SetResponseHeaderLayer::overriding(
            header::SERVER,
            HeaderValue::from_static(concat!("quire/", env!("CARGO_PKG_VERSION"))),
        ))
        .with_state(node)
}

/// Serves the API on `listener` until `shutdown` resolves, then lets requests in
/// flight finish (for at most `grace`). Timeouts and the connection cap come from
/// the node's `[http]` settings.
pub async fn serve(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    node: Arc<Node>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> std::io::Result<()> {
    let limits = node.config.http.clone();
    server::serve(listener, tls, router(node), &limits, shutdown, grace).await
}
