//! Every parser the server owns, fed arbitrary bytes (proptest, a few hundred cases per run in
//! CI): each one answers or refuses, never panics, and what it accepts is what the doors store.

use std::time::Duration;

use axum::http::Uri;
use proptest::prelude::*;

use super::messages::PollQuery;
use crate::input::{NewMessage, check_form_syntax};
use crate::log::MessageLog;

const MAX_WAIT: Duration = Duration::from_secs(60);

proptest! {
    /// `GET /messages?…` with any query: a valid query or a 400, and a wait never above the cap.
    #[test]
    fn any_poll_query_parses_or_is_refused(query in "[a-z=&%0-9.;+ -]{0,40}") {
        if let Ok(uri) = format!("/messages?{query}").parse::<Uri>()
            && let Ok(q) = PollQuery::parse(&uri, MAX_WAIT)
        {
            prop_assert!(q.limit >= 1);
            prop_assert!(q.wait.is_none_or(|w| w <= MAX_WAIT));
        }
    }

    /// A JSON body of any bytes: either a `{name, message}` pair or a refusal.
    #[test]
    fn any_json_body_is_a_message_or_refused(bytes in proptest::collection::vec(any::<u8>(), 0..120)) {
        if let Ok(value) = serde_json::from_slice::<serde_json::Value>(&bytes) {
            let _ = NewMessage::from_json(value);
        }
    }

    /// A form body of any bytes: the syntax check and the decoder agree on what is accepted.
    #[test]
    fn any_form_body_is_checked_before_it_is_decoded(bytes in proptest::collection::vec(any::<u8>(), 0..120)) {
        if check_form_syntax(&bytes).is_ok() {
            let fields: Result<Vec<(String, String)>, _> = serde_urlencoded::from_bytes(&bytes);
            prop_assert!(fields.is_ok(), "checked form did not decode: {:?}", bytes);
            if let Ok(fields) = fields {
                let _ = NewMessage::from_form(fields);
            }
        }
    }

    /// Any name and message: stored within the size limit, or refused; a stored message's JSON
    /// is valid and carries exactly what was sent.
    #[test]
    fn any_message_is_stored_as_sent_or_refused(name in "\\PC{0,20}", message in "\\PC{0,40}") {
        let log = MessageLog::new(4, 64);
        if let Ok(stored) = log.append(&name, &message) {
            let json: serde_json::Value = serde_json::from_str(stored.json_str()).expect("valid JSON");
            prop_assert_eq!(json["name"].as_str(), Some(name.as_str()));
            prop_assert_eq!(json["message"].as_str(), Some(message.as_str()));
        }
    }
}
