//! Turning what a client sent into a `{name, message}` pair, the same way for every door.

use serde_json::{Map, Value};

/// A message a client asked to store (validated further by `MessageLog::append`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    pub name: String,
    pub message: String,
}

/// Why a payload is not a `{name, message}` object (HTTP answers 422).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InputError {
    #[error("expected a JSON object like {{\"name\": \"ann\", \"message\": \"hi\"}}")]
    NotAnObject,
    #[error("`{0}` is missing; send both `name` and `message`")]
    Missing(&'static str),
    #[error("`{0}` must be a string")]
    NotAString(&'static str),
}

impl NewMessage {
    /// From a decoded JSON value (HTTP JSON body or Socket.IO event payload).
    pub fn from_json(value: Value) -> Result<Self, InputError> {
        let Value::Object(mut fields) = value else {
            return Err(InputError::NotAnObject);
        };
        Ok(NewMessage {
            name: take_string(&mut fields, "name")?,
            message: take_string(&mut fields, "message")?,
        })
    }

    /// From decoded form fields (`application/x-www-form-urlencoded`).
    pub fn from_form(fields: Vec<(String, String)>) -> Result<Self, InputError> {
        let mut name = None;
        let mut message = None;
        for (key, value) in fields {
            match key.as_str() {
                "name" => name = Some(value),
                "message" => message = Some(value),
                _ => {}
            }
        }
        Ok(NewMessage {
            name: name.ok_or(InputError::Missing("name"))?,
            message: message.ok_or(InputError::Missing("message"))?,
        })
    }
}

/// Checks what form decoders silently paper over: the body must be UTF-8 and every `%` must start
/// a two-digit hex escape. Returns a description of the first problem.
pub fn check_form_syntax(body: &[u8]) -> Result<(), String> {
    let text = std::str::from_utf8(body).map_err(|e| format!("form body is not UTF-8: {e}"))?;
    let bytes = text.as_bytes();
    for (i, _) in text.match_indices('%') {
        let hex = bytes.get(i + 1..i + 3);
        if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
            return Err(format!("form body has a bad percent escape at byte {i}"));
        }
    }
    Ok(())
}

fn take_string(fields: &mut Map<String, Value>, key: &'static str) -> Result<String, InputError> {
    match fields.remove(key) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(InputError::NotAString(key)),
        None => Err(InputError::Missing(key)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_object_with_two_strings_is_accepted() {
        let m = NewMessage::from_json(json!({"name": "ann", "message": "hi", "extra": 1}));
        assert_eq!(
            m,
            Ok(NewMessage {
                name: "ann".into(),
                message: "hi".into()
            })
        );
    }

    #[test]
    fn json_errors_name_the_field() {
        assert_eq!(
            NewMessage::from_json(json!([1])),
            Err(InputError::NotAnObject)
        );
        assert_eq!(
            NewMessage::from_json(json!({"name": "a"})),
            Err(InputError::Missing("message"))
        );
        assert_eq!(
            NewMessage::from_json(json!({"name": 3, "message": "x"})),
            Err(InputError::NotAString("name"))
        );
    }

    #[test]
    fn form_syntax_errors_are_found() {
        assert!(check_form_syntax(b"name=a%20b&message=%E2%9C%93").is_ok());
        assert!(check_form_syntax(b"name=a&message=%zz").is_err());
        assert!(check_form_syntax(b"name=a&message=%4").is_err());
        assert!(check_form_syntax(&[b'a', 0xff]).is_err());
    }

    #[test]
    fn form_fields_are_picked_by_name() {
        let fields = vec![
            ("message".to_owned(), "hi".to_owned()),
            ("name".to_owned(), "ann".to_owned()),
        ];
        assert_eq!(
            NewMessage::from_form(fields),
            Ok(NewMessage {
                name: "ann".into(),
                message: "hi".into()
            })
        );
        assert_eq!(
            NewMessage::from_form(vec![]),
            Err(InputError::Missing("name"))
        );
    }
}
