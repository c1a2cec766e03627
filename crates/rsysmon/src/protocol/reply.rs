//! The daemon's answers: one header line per request, as types. The daemon
//! writes them with [`reply_line`] and [`refusal_line`], the client reads
//! them with [`parse_reply`]: one definition for both ends.
//!
//! Every header carries the protocol version `v` and `ok`; a refusal has
//! `error`, an answer the fields of its type.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{Status, PROTOCOL_VERSION};

/// The answer to `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReply {
    pub status: Status,
}

/// The answer to `events`: `count` event lines follow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventsReply {
    pub count: usize,
    /// Events rotated out of the daemon's history since it started.
    pub rotated: u64,
}

/// The answer to `remote-threads`: `count` event lines follow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountReply {
    pub count: usize,
}

/// The answer to `block-add` and `block-remove`: the rule as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleReply {
    pub rule: String,
}

/// The answer to `block-list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RulesReply {
    pub rules: Vec<String>,
}

/// The answer to `watch`: event lines follow until either side closes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchReply {}

/// Why an answer could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    #[error("the daemon's answer is not JSON: {0}")]
    NotJson(String),
    #[error("protocol version mismatch: this client speaks {PROTOCOL_VERSION}, the daemon answered {0}")]
    Version(String),
    #[error("the daemon refused: {0}")]
    Refused(String),
    #[error("the daemon sent an answer this client cannot read: {0}")]
    Unreadable(String),
}

/// What every header line has.
#[derive(Serialize, Deserialize)]
struct Envelope<T> {
    v: u64,
    ok: bool,
    #[serde(flatten)]
    body: T,
}

#[derive(Serialize, Deserialize)]
struct Refusal {
    error: String,
}

/// The header line of a successful answer, without the newline.
pub fn reply_line(body: &impl Serialize) -> String {
    reply_line_of(true, body)
}

/// The header line of a refusal, without the newline.
pub fn refusal_line(message: &str) -> String {
    reply_line_of(false, &Refusal { error: message.to_string() })
}

fn reply_line_of(ok: bool, body: &impl Serialize) -> String {
    serde_json::to_string(&Envelope { v: PROTOCOL_VERSION, ok, body }).expect("replies always serialize")
}

/// Read a header line as the answer `T`, or say why it is not one.
pub fn parse_reply<T: DeserializeOwned>(line: &str) -> Result<T, ReplyError> {
    #[derive(Deserialize)]
    struct Head {
        v: Option<serde_json::Value>,
        ok: Option<bool>,
        error: Option<String>,
    }
    let head: Head = serde_json::from_str(line).map_err(|e| ReplyError::NotJson(e.to_string()))?;
    if head.ok != Some(true) {
        let v = head.v.unwrap_or(serde_json::Value::Null);
        if v.as_u64() != Some(PROTOCOL_VERSION) {
            return Err(ReplyError::Version(v.to_string()));
        }
        return Err(ReplyError::Refused(head.error.unwrap_or_else(|| "no reason given".into())));
    }
    serde_json::from_str(line).map_err(|e| ReplyError::Unreadable(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_round_trip_with_version_and_ok() {
        let line = reply_line(&EventsReply { count: 3, rotated: 9 });
        assert!(line.contains("\"v\":1") && line.contains("\"ok\":true"), "{line}");
        assert_eq!(parse_reply::<EventsReply>(&line), Ok(EventsReply { count: 3, rotated: 9 }));
        assert_eq!(parse_reply::<WatchReply>(&reply_line(&WatchReply {})), Ok(WatchReply {}));
        let rules = RulesReply { rules: vec!["/opt/x".into(), "glob:/tmp/*".into()] };
        assert_eq!(parse_reply::<RulesReply>(&reply_line(&rules)), Ok(rules));
    }

    #[test]
    fn refusals_and_strangers_say_why() {
        let line = refusal_line("permission denied");
        assert_eq!(line, r#"{"v":1,"ok":false,"error":"permission denied"}"#);
        assert_eq!(parse_reply::<WatchReply>(&line), Err(ReplyError::Refused("permission denied".into())));
        assert!(matches!(
            parse_reply::<WatchReply>(r#"{"v":2,"ok":false,"error":"x"}"#),
            Err(ReplyError::Version(v)) if v == "2"
        ));
        assert!(matches!(parse_reply::<WatchReply>("nope"), Err(ReplyError::NotJson(_))));
        assert!(matches!(parse_reply::<EventsReply>(r#"{"v":1,"ok":true}"#), Err(ReplyError::Unreadable(_))));
    }
}
