//! Target profiles (`--profile NAME|FILE`): how a server takes a message and how it hands
//! messages out, per door. The built-in `pushpoll` is the project's server and the default (its
//! doors are served by the strategies' original code, byte for byte); `tutorial` is the Express
//! tutorial app; any other server is described by a TOML file:
//!
//! ```toml
//! name = "chat-api"
//! [send]                  # how a probe is posted
//! route = "/api/chat"
//! method = "POST"         # default POST
//! body = '{"body":"{text}"}'   # {text}: the probe, {name}: the sender, both JSON-escaped
//! content_type = "application/json"   # the default
//! # or, instead of route/method/body/content_type, a Socket.IO event (exactly one of the two):
//! # socketio = { namespace = "/chat", event = "say", body = '{"body":"{text}"}', ack = false }
//! [socketio]              # optional: a Socket.IO event carrying each message
//! namespace = "/chat"     # default "/"
//! event = "chat"
//! text = "/body"          # JSON pointer to the text in the event's argument
//! id = "/seq"             # optional JSON pointer to a numeric id
//! [sse]                   # optional: Server-Sent Events
//! path = "/events"
//! event = "message"       # default "message" (also matches events without a name)
//! text = "/message"
//! id = "/id"
//! [poll]                  # optional: a list to poll
//! route = "/api/chat"
//! cursor = "after"        # optional query parameter taking the highest id seen
//! list = "/items"         # JSON pointer to the array ("" : the answer is the array)
//! id = "/seq"
//! text = "/body"
//! ```

use std::sync::{Arc, LazyLock};

use serde::Deserialize;

/// A target profile: the send door and the receive doors it declares.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub name: String,
    pub send: SendDoor,
    #[serde(default)]
    pub socketio: Option<SocketioDoor>,
    #[serde(default)]
    pub sse: Option<SseDoor>,
    #[serde(default)]
    pub poll: Option<PollDoor>,
}

/// How a probe is sent: an HTTP request (`route`, …) or a Socket.IO event (`socketio`), exactly
/// one of the two.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendDoor {
    /// Empty when the send is a Socket.IO event.
    #[serde(default)]
    pub route: String,
    #[serde(default = "post")]
    pub method: String,
    /// The request body; `{text}` becomes the probe text and `{name}` the sender's name, both
    /// escaped as JSON string contents.
    #[serde(default)]
    pub body: String,
    #[serde(default = "json")]
    pub content_type: String,
    /// The probe is sent as this Socket.IO event instead of an HTTP request.
    #[serde(default)]
    pub socketio: Option<SendEvent>,
}

/// A send by Socket.IO event: `body` (a JSON template, `{text}` and `{name}` as in the HTTP
/// body) is the event's one argument, emitted in `namespace`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendEvent {
    #[serde(default = "root")]
    pub namespace: String,
    pub event: String,
    pub body: String,
    /// Ask the server to acknowledge each event: the send is accepted when the ack arrives
    /// (within the POST deadline) instead of when the frame is written.
    #[serde(default)]
    pub ack: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SocketioDoor {
    #[serde(default = "root")]
    pub namespace: String,
    pub event: String,
    #[serde(default = "message_ptr")]
    pub text: String,
    #[serde(default)]
    pub id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SseDoor {
    pub path: String,
    #[serde(default = "message")]
    pub event: String,
    #[serde(default = "message_ptr")]
    pub text: String,
    #[serde(default)]
    pub id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PollDoor {
    pub route: String,
    #[serde(default)]
    pub cursor: Option<String>,
    #[serde(default)]
    pub list: String,
    #[serde(default = "message_ptr")]
    pub text: String,
    #[serde(default)]
    pub id: Option<String>,
}

fn post() -> String {
    "POST".into()
}
fn json() -> String {
    "application/json".into()
}
fn root() -> String {
    "/".into()
}
fn message() -> String {
    "message".into()
}
fn message_ptr() -> String {
    "/message".into()
}

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("cannot read profile file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("profile {path}: {source}")]
    Parse {
        path: String,
        source: Box<toml::de::Error>,
    },
    #[error("profile {path}: field `{field}` {problem}")]
    Invalid {
        path: String,
        field: &'static str,
        problem: String,
    },
}

/// The project's server (the default).
pub static PUSHPOLL: LazyLock<Arc<Profile>> = LazyLock::new(|| {
    Arc::new(Profile {
        name: "pushpoll".into(),
        send: SendDoor {
            route: "/messages".into(),
            method: post(),
            body: r#"{"name":"{name}","message":"{text}"}"#.into(),
            content_type: json(),
            socketio: None,
        },
        socketio: Some(SocketioDoor {
            namespace: root(),
            event: message(),
            text: message_ptr(),
            id: Some("/id".into()),
        }),
        sse: Some(SseDoor {
            path: "/events".into(),
            event: message(),
            text: message_ptr(),
            id: Some("/id".into()),
        }),
        poll: Some(PollDoor {
            route: "/messages".into(),
            cursor: Some("since".into()),
            list: String::new(),
            text: message_ptr(),
            id: Some("/id".into()),
        }),
    })
});

/// The Express tutorial app (`web/reference/tutorial-server.js`): `GET/POST /messages` without
/// ids or cursors, Socket.IO event `message`, no SSE.
pub fn tutorial() -> Profile {
    Profile {
        name: "tutorial".into(),
        send: PUSHPOLL.send.clone(),
        socketio: Some(SocketioDoor {
            namespace: root(),
            event: message(),
            text: message_ptr(),
            id: None,
        }),
        sse: None,
        poll: Some(PollDoor {
            route: "/messages".into(),
            cursor: None,
            list: String::new(),
            text: message_ptr(),
            id: None,
        }),
    }
}

impl Profile {
    /// The built-in profile `name_or_file` names, else the profile in that TOML file.
    pub fn load(name_or_file: &str) -> Result<Arc<Profile>, ProfileError> {
        match name_or_file {
            "pushpoll" => return Ok(PUSHPOLL.clone()),
            "tutorial" => return Ok(Arc::new(tutorial())),
            _ => {}
        }
        let text = std::fs::read_to_string(name_or_file).map_err(|source| ProfileError::Read {
            path: name_or_file.to_string(),
            source,
        })?;
        Profile::parse(name_or_file, &text).map(Arc::new)
    }

    /// Parses and checks a profile; `path` only names it in errors.
    pub fn parse(path: &str, text: &str) -> Result<Profile, ProfileError> {
        let profile: Profile = toml::from_str(text).map_err(|e| ProfileError::Parse {
            path: path.to_string(),
            source: Box::new(e),
        })?;
        profile
            .check()
            .map_err(|(field, problem)| ProfileError::Invalid {
                path: path.to_string(),
                field,
                problem,
            })?;
        Ok(profile)
    }

    /// The project's own server, served by the strategies' original code paths.
    pub fn is_pushpoll(&self) -> bool {
        *self == **PUSHPOLL
    }

    fn check(&self) -> Result<(), (&'static str, String)> {
        let route = |field, v: &str| {
            if v.starts_with('/') {
                Ok(())
            } else {
                Err((
                    field,
                    format!("must be a path starting with `/`, got `{v}`"),
                ))
            }
        };
        let pointer = |field, v: &str| {
            if v.is_empty() || v.starts_with('/') {
                Ok(())
            } else {
                Err((
                    field,
                    format!("must be a JSON pointer (empty or starting with `/`), got `{v}`"),
                ))
            }
        };
        if let Some(e) = &self.send.socketio {
            if !self.send.route.is_empty() || !self.send.body.is_empty() {
                return Err((
                    "send.socketio",
                    "is an alternative to the HTTP send: give either `send.socketio` or \
                     `send.route`/`send.body`, not both"
                        .into(),
                ));
            }
            route("send.socketio.namespace", &e.namespace)?;
            if e.event.is_empty() {
                return Err(("send.socketio.event", "must not be empty".into()));
            }
            if !e.body.contains("{text}") {
                return Err((
                    "send.socketio.body",
                    "must contain `{text}` (where the probe goes)".into(),
                ));
            }
            if serde_json::from_str::<serde_json::Value>(&fill(&e.body, "n", "t")).is_err() {
                return Err(("send.socketio.body", "is not a JSON template".into()));
            }
        } else if self.send.route.is_empty() {
            return Err((
                "send.route",
                "is missing: the send is `send.route` (HTTP) or `send.socketio` (an event)".into(),
            ));
        }
        if self.send.socketio.is_none() {
            route("send.route", &self.send.route)?;
            if http::Method::from_bytes(self.send.method.as_bytes()).is_err() {
                return Err((
                    "send.method",
                    format!("is not an HTTP method: `{}`", self.send.method),
                ));
            }
            if !self.send.body.contains("{text}") {
                return Err((
                    "send.body",
                    "must contain `{text}` (where the probe goes)".into(),
                ));
            }
            if http::HeaderValue::from_str(&self.send.content_type).is_err() {
                return Err(("send.content_type", "is not a header value".into()));
            }
        }
        if let Some(s) = &self.socketio {
            route("socketio.namespace", &s.namespace)?;
            if s.event.is_empty() {
                return Err(("socketio.event", "must not be empty".into()));
            }
            pointer("socketio.text", &s.text)?;
            pointer("socketio.id", s.id.as_deref().unwrap_or(""))?;
        }
        if let Some(s) = &self.sse {
            route("sse.path", &s.path)?;
            pointer("sse.text", &s.text)?;
            pointer("sse.id", s.id.as_deref().unwrap_or(""))?;
        }
        if let Some(p) = &self.poll {
            route("poll.route", &p.route)?;
            pointer("poll.list", &p.list)?;
            pointer("poll.text", &p.text)?;
            pointer("poll.id", p.id.as_deref().unwrap_or(""))?;
            if p.cursor.is_some() && p.id.is_none() {
                return Err((
                    "poll.cursor",
                    "needs `poll.id` (the cursor is an id)".into(),
                ));
            }
        }
        Ok(())
    }

    /// The send request's body for probe `text` from sender `name`.
    pub fn send_body(&self, name: &str, text: &str) -> String {
        fill(&self.send.body, name, text)
    }
}

impl SendEvent {
    /// The event's argument (one JSON value) for probe `text` from sender `name`.
    pub fn arg(&self, name: &str, text: &str) -> String {
        fill(&self.body, name, text)
    }
}

/// `template` with `{name}` and `{text}` replaced by the JSON-escaped strings.
fn fill(template: &str, name: &str, text: &str) -> String {
    let escape = |s: &str| {
        let quoted = serde_json::to_string(s).unwrap_or_default();
        quoted[1..quoted.len().saturating_sub(1).max(1)].to_string()
    };
    template
        .replace("{name}", &escape(name))
        .replace("{text}", &escape(text))
}

impl PollDoor {
    /// The poll request's path, with the cursor when the door has one.
    pub fn path(&self, after: Option<u64>) -> String {
        match (&self.cursor, after) {
            (Some(param), Some(id)) => {
                let sep = if self.route.contains('?') { '&' } else { '?' };
                format!("{}{sep}{param}={id}", self.route)
            }
            _ => self.route.clone(),
        }
    }
}

/// One message read through JSON pointers: its text and, if the door has ids, its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extracted {
    pub id: Option<u64>,
    pub text: String,
}

/// What did not match in a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Mismatch {
    #[error("the answer is not JSON: {0}")]
    NotJson(String),
    #[error("no array at JSON pointer `{0}`")]
    NoList(String),
    #[error("no string at JSON pointer `{0}`")]
    NoText(String),
    #[error("no number at JSON pointer `{0}`")]
    NoId(String),
}

/// Reads one message object through `text` and `id` pointers (an id may be a number or a
/// string of digits).
pub fn extract(v: &serde_json::Value, text: &str, id: Option<&str>) -> Result<Extracted, Mismatch> {
    let t = v
        .pointer(text)
        .and_then(|t| t.as_str())
        .ok_or_else(|| Mismatch::NoText(text.to_string()))?;
    let id = match id {
        None => None,
        Some(p) => Some(
            v.pointer(p)
                .and_then(|i| i.as_u64().or_else(|| i.as_str()?.parse().ok()))
                .ok_or_else(|| Mismatch::NoId(p.to_string()))?,
        ),
    };
    Ok(Extracted {
        id,
        text: t.to_string(),
    })
}

/// The messages of a poll answer.
pub fn extract_list(body: &[u8], door: &PollDoor) -> Result<Vec<Extracted>, Mismatch> {
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| Mismatch::NotJson(e.to_string()))?;
    let items = v
        .pointer(&door.list)
        .and_then(|l| l.as_array())
        .ok_or_else(|| Mismatch::NoList(door.list.clone()))?;
    items
        .iter()
        .map(|i| extract(i, &door.text, door.id.as_deref()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHAT_API: &str = r#"
name = "chat-api"
[send]
route = "/api/chat"
body = '{"body":"{text}"}'
[socketio]
namespace = "/chat"
event = "chat"
text = "/body"
id = "/seq"
[poll]
route = "/api/chat"
cursor = "after"
list = "/items"
id = "/seq"
text = "/body"
"#;

    #[test]
    fn a_profile_file_parses_with_defaults() {
        let p = Profile::parse("p.toml", CHAT_API).expect("profile");
        assert_eq!(p.send.method, "POST");
        assert_eq!(p.send.content_type, "application/json");
        assert_eq!(
            p.poll.as_ref().map(|d| d.path(Some(7))).as_deref(),
            Some("/api/chat?after=7")
        );
        assert!(p.sse.is_none());
        assert!(!p.is_pushpoll());
        assert!(Profile::load("pushpoll").expect("builtin").is_pushpoll());
        assert_eq!(Profile::load("tutorial").expect("builtin").name, "tutorial");
    }

    #[test]
    fn the_pushpoll_template_makes_the_bytes_of_the_original_post() {
        let text = "p1 \"quoted\" \\ tab\t é";
        let original = serde_json::json!({"name": "sender-3", "message": text});
        let expected = format!(
            r#"{{"name":"sender-3","message":{}}}"#,
            serde_json::to_string(text).expect("json")
        );
        assert_eq!(PUSHPOLL.send_body("sender-3", text), expected);
        let parsed: serde_json::Value = serde_json::from_str(&expected).expect("json");
        assert_eq!(parsed, original);
    }

    fn error_of(text: &str) -> String {
        Profile::parse("bad.toml", text)
            .expect_err("must fail")
            .to_string()
    }

    #[test]
    fn mistakes_name_the_field() {
        let missing_event = CHAT_API.replace("event = \"chat\"\n", "");
        let e = error_of(&missing_event);
        assert!(e.contains("`event`") && e.contains("[socketio]"), "{e}");
        let unknown = CHAT_API.replace("cursor = ", "cursr = ");
        let e = error_of(&unknown);
        assert!(e.contains("cursr"), "{e}");
        let wrong_type = CHAT_API.replace("id = \"/seq\"\ntext", "id = 3\ntext");
        let e = error_of(&wrong_type);
        assert!(e.contains("id = 3"), "{e}");
        let no_text = CHAT_API.replace("{text}", "{txt}");
        assert!(error_of(&no_text).contains("field `send.body`"));
        let bad_pointer = CHAT_API.replace("list = \"/items\"", "list = \"items\"");
        assert!(error_of(&bad_pointer).contains("field `poll.list`"));
        let bad_route = CHAT_API.replace("route = \"/api/chat\"\nbody", "route = \"api\"\nbody");
        assert!(error_of(&bad_route).contains("field `send.route`"));
    }

    #[test]
    fn a_send_by_event_parses_and_fills_its_argument() {
        let by_event = CHAT_API.replace(
            "route = \"/api/chat\"\nbody = '{\"body\":\"{text}\"}'\n",
            "socketio = { event = \"say\", body = '{\"by\":\"{name}\",\"body\":\"{text}\"}' }\n",
        );
        let p = Profile::parse("p.toml", &by_event).expect("profile");
        let event = p.send.socketio.expect("send by event");
        assert_eq!(event.namespace, "/");
        assert_eq!(event.event, "say");
        assert!(!event.ack, "accepted when written unless `ack = true`");
        assert_eq!(
            event.arg("sender-1", "a \"b\""),
            r#"{"by":"sender-1","body":"a \"b\""}"#
        );
        let not_json = by_event.replace("'{\"by\"", "'{by\"");
        assert!(error_of(&not_json).contains("field `send.socketio.body` is not a JSON template"));
        let bad_ns = by_event.replace("{ event", "{ namespace = \"chat\", event");
        assert!(error_of(&bad_ns).contains("field `send.socketio.namespace`"));
        let no_event = by_event.replace("event = \"say\", ", "");
        assert!(error_of(&no_event).contains("missing field `event`"));
    }

    #[test]
    fn pointers_extract_lists_or_say_what_is_missing() {
        let p = Profile::parse("p.toml", CHAT_API).expect("profile");
        let door = p.poll.expect("poll");
        let list = extract_list(br#"{"items":[{"seq":4,"body":"hi"}]}"#, &door).expect("list");
        assert_eq!(
            list,
            vec![Extracted {
                id: Some(4),
                text: "hi".into()
            }]
        );
        assert_eq!(
            extract_list(br#"{"data":[]}"#, &door),
            Err(Mismatch::NoList("/items".into()))
        );
        assert_eq!(
            extract_list(br#"{"items":[{"id":4,"body":"hi"}]}"#, &door),
            Err(Mismatch::NoId("/seq".into()))
        );
    }
}
