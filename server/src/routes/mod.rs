//! The HTTP router: one handler module per door, plus pages and metrics.

mod cursor;
mod events;
mod messages;
mod page_body;
mod pages;
mod track;
mod unsent;

#[cfg(test)]
mod fuzz;

use axum::Router;
use axum::routing::get;

use crate::state::AppState;

pub use messages::{LATEST_ID_HEADER, MISSED_HEADER, OLDEST_ID_HEADER};

/// `socket_io` holds socketioxide's routes (`/socket.io/`); `/socket.io/socket.io.js` stays ours.
pub fn router(state: AppState, socket_io: Router<AppState>) -> Router {
    let metrics = state.metrics.clone();
    Router::new()
        .route(
            "/messages",
            get(messages::get_messages).post(messages::post_message),
        )
        .route("/events", get(events::events))
        .route("/socket.io/socket.io.js", get(pages::socket_io_client))
        .merge(socket_io)
        .route("/", get(pages::index))
        .route("/app.js", get(pages::app_js))
        .route("/style.css", get(pages::style_css))
        .route("/race", get(pages::race))
        .route("/race.js", get(pages::race_js))
        .route("/race.css", get(pages::race_css))
        .route("/healthz", get(pages::healthz))
        .route("/metrics", get(pages::metrics))
        .fallback(pages::not_found)
        .with_state(state)
        .layer(axum::middleware::from_fn_with_state(metrics, track::track))
}
