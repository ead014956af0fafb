//! A client's cursor: the id of the last message it has, from `?since=ID` (cursor and long
//! polls, SSE) or an `EventSource`'s `Last-Event-ID`.

use crate::api_error::ApiError;

/// `since` as a message id, or a `400` that says what a cursor is.
pub fn parse_since(text: &str) -> Result<u64, ApiError> {
    text.parse::<u64>().map_err(|_| {
        ApiError::bad_request(format!(
            "`since` must be a message id (0 or a positive whole number), got {text:?}"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_is_a_whole_number() {
        assert_eq!(parse_since("0").ok(), Some(0));
        assert_eq!(parse_since("42").ok(), Some(42));
        for bad in ["", "-1", "x", "1.5", " 3"] {
            assert!(parse_since(bad).is_err(), "{bad:?}");
        }
    }
}
