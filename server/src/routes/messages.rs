//! `GET /messages` (whole list, cursor poll, long poll) and `POST /messages`.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Form, FromRequest, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, Version, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::cursor::parse_since;
use super::page_body::PageBody;
use crate::api_error::ApiError;
use crate::body_deadline::BodyTimeout;
use crate::input::{NewMessage, check_form_syntax};
use crate::log::PageInfo;
use crate::metrics::GaugeGuard;
use crate::state::AppState;

// Headers that make a gap in the history visible while the body stays a plain JSON array.
pub use pushpoll_wire::headers::{LATEST_ID_HEADER, MISSED_HEADER, OLDEST_ID_HEADER};

#[derive(Deserialize)]
struct RawQuery {
    since: Option<String>,
    limit: Option<String>,
    wait: Option<String>,
}

/// A validated `GET /messages` query.
#[derive(Debug, PartialEq, Eq)]
pub struct PollQuery {
    pub since: u64,
    pub limit: usize,
    pub wait: Option<Duration>,
}

impl PollQuery {
    pub fn parse(uri: &Uri, max_wait: Duration) -> Result<Self, ApiError> {
        let Query(raw) = Query::<RawQuery>::try_from_uri(uri)
            .map_err(|e| ApiError::bad_request(format!("bad query string: {e}")))?;
        let since = match raw.since.as_deref() {
            None => 0,
            Some(s) => parse_since(s)?,
        };
        let limit = match raw.limit.as_deref() {
            None => usize::MAX,
            Some(s) => match s.parse::<usize>() {
                Ok(n) if n > 0 => n,
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "`limit` must be a whole number of at least 1, got {s:?}"
                    )));
                }
            },
        };
        let wait = match raw.wait.as_deref() {
            None => None,
            Some(s) => Some(parse_wait(s)?.min(max_wait)),
        };
        Ok(PollQuery { since, limit, wait })
    }
}

/// `30`, `30s`, `500ms`, `1m` (a bare number means seconds).
fn parse_wait(text: &str) -> Result<Duration, ApiError> {
    let parsed = match text.parse::<u64>() {
        Ok(secs) => Ok(Duration::from_secs(secs)),
        Err(_) => humantime::parse_duration(text),
    };
    parsed.map_err(|_| {
        ApiError::bad_request(format!(
            "`wait` must be a duration like 30s or 500ms, got {text:?}"
        ))
    })
}

/// `GET` and `HEAD /messages`. The answer's body is streamed from the log ([`PageBody`]); `HEAD`
/// gets the same headers, `Content-Length` included, without touching a message.
pub async fn get_messages(
    State(st): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let query = match PollQuery::parse(&uri, st.config.max_wait) {
        Ok(q) => q,
        Err(e) => return e.into_response(),
    };
    st.catch_up(query.since).await;
    let page = match query.wait {
        Some(wait) if query.since >= st.log.latest_id() && !wait.is_zero() => {
            long_poll(&st, &query, wait).await
        }
        _ => st.log.page_info(query.since, query.limit),
    };
    page_response(&st, &page, query.since, &headers, method == Method::HEAD)
}

/// Waits until a message newer than `since` exists, `wait` runs out, or the server shuts down.
async fn long_poll(st: &AppState, query: &PollQuery, wait: Duration) -> PageInfo {
    // A cursor ahead of the log (e.g. from before a restart) would wait for ids that may never come.
    if query.since > st.log.latest_id() {
        return st.log.page_info(query.since, query.limit);
    }
    let mut latest = st.log.subscribe();
    let _waiting = GaugeGuard::new(&st.metrics.long_polls_waiting);
    let since = query.since;
    tokio::select! {
        _ = latest.wait_for(|&id| id > since) => {}
        () = tokio::time::sleep(wait) => {}
        () = st.shutdown.cancelled() => {}
    }
    st.log.page_info(query.since, query.limit)
}

fn page_response(
    st: &AppState,
    page: &PageInfo,
    since: u64,
    request: &HeaderMap,
    head: bool,
) -> Response {
    // The ETag names the newest id; the body is the page fixed at this instant, so a matching
    // tag always stands for the same bytes.
    let etag = format!("\"{:x}-{}\"", st.epoch, page.latest_id);
    let mut response = if if_none_match(request, &etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let body = if head {
            Body::empty()
        } else {
            Body::new(PageBody::new(st.log.clone(), page))
        };
        let mut r = Response::new(body);
        let h = r.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(page.json_len));
        r
    };
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, v);
    }
    if page.missed > 0 {
        headers.insert(MISSED_HEADER, HeaderValue::from(page.missed));
        if let Some(oldest) = page.oldest_id {
            headers.insert(OLDEST_ID_HEADER, HeaderValue::from(oldest));
        }
    }
    if since > page.latest_id {
        headers.insert(LATEST_ID_HEADER, HeaderValue::from(page.latest_id));
    }
    response
}

/// True when `If-None-Match` lists `etag` (or `*`); weak validators compare equal too.
fn if_none_match(request: &HeaderMap, etag: &str) -> bool {
    request.get_all(header::IF_NONE_MATCH).iter().any(|value| {
        value.to_str().is_ok_and(|list| {
            list.split(',')
                .map(str::trim)
                .any(|tag| tag == "*" || tag.trim_start_matches("W/") == etag)
        })
    })
}

/// `POST /messages`: JSON or form `{name, message}` → 201 with the stored message.
pub async fn post_message(State(st): State<AppState>, request: Request) -> Response {
    let version = request.version();
    match store(&st, request).await {
        Ok(json) => {
            st.metrics.messages_stored_http.inc();
            (
                StatusCode::CREATED,
                [(header::CONTENT_TYPE, "application/json")],
                json,
            )
                .into_response()
        }
        Err(Refusal { error, body_unread }) => {
            let unavailable = error.status == StatusCode::SERVICE_UNAVAILABLE;
            let mut response = error.into_response();
            if unavailable {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            // The rest of an unread (or unreadable) body would be taken for the next request:
            // HTTP/1 closes the connection instead (HTTP/2 resets just the stream).
            if body_unread && version <= Version::HTTP_11 {
                response
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            response
        }
    }
}

/// A refused POST; `body_unread` when the body was not (or could not be) read to its end.
struct Refusal {
    error: ApiError,
    body_unread: bool,
}

impl From<ApiError> for Refusal {
    fn from(error: ApiError) -> Self {
        Refusal {
            error,
            body_unread: false,
        }
    }
}

impl From<crate::log::AppendError> for Refusal {
    fn from(error: crate::log::AppendError) -> Self {
        ApiError::from(error).into()
    }
}

enum BodyKind {
    Json,
    Form,
}

async fn store(st: &AppState, request: Request) -> Result<Bytes, Refusal> {
    let kind = body_kind(request.headers())?;
    let limit = st.config.max_message_bytes;
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body is over {limit} bytes (--max-message-bytes)"),
        )
    };
    // Refused from the header alone, before a byte of the body is read.
    if declared_length(request.headers()).is_some_and(|n| n > limit as u64) {
        return Err(Refusal {
            error: too_large(),
            body_unread: true,
        });
    }
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|e| Refusal {
            body_unread: true,
            error: match body_failure(&e) {
                BodyFailure::TooLarge => too_large(),
                BodyFailure::Timeout => ApiError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    format!("request body not complete in time ({e}; --body-timeout)"),
                ),
                BodyFailure::Malformed => {
                    ApiError::bad_request(format!("malformed or incomplete request body: {e}"))
                }
            },
        })?;
    let new = match kind {
        BodyKind::Json => {
            let value: serde_json::Value = serde_json::from_slice(&bytes)
                .map_err(|e| ApiError::bad_request(format!("malformed JSON body: {e}")))?;
            NewMessage::from_json(value)
        }
        BodyKind::Form => {
            check_form_syntax(&bytes)
                .map_err(|e| ApiError::bad_request(format!("malformed form body: {e}")))?;
            let request = Request::from_parts(parts, Body::from(bytes));
            let Form(fields) = Form::<Vec<(String, String)>>::from_request(request, &())
                .await
                .map_err(|e| ApiError::bad_request(format!("malformed form body: {e}")))?;
            NewMessage::from_form(fields)
        }
    }
    .map_err(|e| ApiError::unprocessable(e.to_string()))?;
    let stored = match &st.broker {
        None => st.log.append(&new.name, &new.message)?,
        Some(broker) => {
            st.log.check(&new.name, &new.message)?;
            let stored = broker.append(&new.name, &new.message).await.map_err(|e| {
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("the message was not stored: {e}; send it again shortly"),
                )
            })?;
            // Read-your-writes: a GET right after the 201 finds the message on this node too.
            st.catch_up(stored.id()).await;
            stored
        }
    };
    Ok(stored.json().clone())
}

/// The request's `Content-Length`, when it has a valid one.
fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

#[derive(Debug, PartialEq, Eq)]
enum BodyFailure {
    TooLarge,
    Timeout,
    Malformed,
}

/// Why reading a body failed: over the limit, too slow (`--body-timeout`), or broken framing
/// (a malformed chunk, the client gone mid-body).
fn body_failure(error: &axum::Error) -> BodyFailure {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = cause {
        if e.is::<http_body_util::LengthLimitError>() {
            return BodyFailure::TooLarge;
        }
        if e.is::<BodyTimeout>() {
            return BodyFailure::Timeout;
        }
        cause = e.source();
    }
    BodyFailure::Malformed
}

fn body_kind(headers: &HeaderMap) -> Result<BodyKind, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match mime.as_str() {
        "application/json" => Ok(BodyKind::Json),
        "application/x-www-form-urlencoded" => Ok(BodyKind::Form),
        _ => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "content type {content_type:?} is not supported; send application/json or \
                 application/x-www-form-urlencoded"
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(q: &str) -> Result<PollQuery, ApiError> {
        let uri: Uri = format!("/messages?{q}").parse().expect("valid uri");
        PollQuery::parse(&uri, Duration::from_secs(60))
    }

    #[test]
    fn queries_parse_and_wait_is_capped() {
        assert_eq!(
            parse(""),
            Ok(PollQuery {
                since: 0,
                limit: usize::MAX,
                wait: None
            })
        );
        assert_eq!(
            parse("since=5&limit=2&wait=500ms"),
            Ok(PollQuery {
                since: 5,
                limit: 2,
                wait: Some(Duration::from_millis(500))
            })
        );
        assert_eq!(
            parse("wait=30").map(|q| q.wait),
            Ok(Some(Duration::from_secs(30)))
        );
        assert_eq!(
            parse("wait=5m").map(|q| q.wait),
            Ok(Some(Duration::from_secs(60)))
        );
    }

    #[test]
    fn bad_values_are_400_naming_the_parameter() {
        for (q, word) in [
            ("since=-1", "since"),
            ("since=x", "since"),
            ("limit=0", "limit"),
            ("wait=soon", "wait"),
        ] {
            let err = parse(q).expect_err(q);
            assert_eq!(err.status, StatusCode::BAD_REQUEST);
            assert!(err.message.contains(word), "{q}: {}", err.message);
        }
    }

    #[test]
    fn if_none_match_handles_lists_weak_tags_and_star() {
        let mut h = HeaderMap::new();
        h.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_static("\"a\", W/\"b\""),
        );
        assert!(if_none_match(&h, "\"b\""));
        assert!(!if_none_match(&h, "\"c\""));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        assert!(if_none_match(&h, "\"c\""));
    }
}
