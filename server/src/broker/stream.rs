//! Stream entries as the broker reads them (`XREAD`, `XREVRANGE`): entry `N-0` with fields
//! `n` (name), `m` (message) and `t` (microseconds since the epoch when a node sent it).

use redis::{Cmd, Value};

use crate::log::StoredMessage;

/// One message read back from the stream.
#[derive(Debug)]
pub struct Entry {
    pub message: StoredMessage,
    /// When the appending node sent it, in microseconds since the Unix epoch.
    pub sent_micros: u64,
}

/// Entries after `after` (`XREAD COUNT count BLOCK block_ms STREAMS stream after-0`).
pub fn read_after(stream: &str, after: u64, count: usize, block_ms: u64) -> Cmd {
    let mut cmd = redis::cmd("XREAD");
    cmd.arg("COUNT")
        .arg(count)
        .arg("BLOCK")
        .arg(block_ms)
        .arg("STREAMS")
        .arg(stream)
        .arg(format!("{after}-0"));
    cmd
}

/// The newest `count` entries, newest first.
pub fn newest(stream: &str, count: usize) -> Cmd {
    let mut cmd = redis::cmd("XREVRANGE");
    cmd.arg(stream).arg("+").arg("-").arg("COUNT").arg(count);
    cmd
}

/// The entries of an `XREAD` reply for one stream (nil, on a `BLOCK` timeout: none).
pub fn parse_xread(reply: Value) -> Result<Vec<Entry>, String> {
    match reply {
        Value::Nil => Ok(Vec::new()),
        Value::Array(streams) => {
            let mut out = Vec::new();
            for stream in streams {
                let Value::Array(mut pair) = stream else {
                    return Err(format!("XREAD: a stream is not [key, entries]: {stream:?}"));
                };
                if pair.len() != 2 {
                    return Err("XREAD: a stream is not [key, entries]".to_owned());
                }
                out.extend(parse_entries(pair.swap_remove(1))?);
            }
            Ok(out)
        }
        // RESP3 servers answer a map; this client speaks RESP2.
        other => Err(format!("XREAD: unexpected reply {other:?}")),
    }
}

/// `[[id, [field, value, …]], …]` as `XRANGE`/`XREVRANGE` and each `XREAD` stream give it.
pub fn parse_entries(reply: Value) -> Result<Vec<Entry>, String> {
    let Value::Array(entries) = reply else {
        return Err(format!("stream entries: unexpected reply {reply:?}"));
    };
    entries.into_iter().map(parse_entry).collect()
}

fn parse_entry(entry: Value) -> Result<Entry, String> {
    let Value::Array(parts) = entry else {
        return Err(format!("stream entry: unexpected reply {entry:?}"));
    };
    let [Value::BulkString(id), Value::Array(fields)] = parts.as_slice() else {
        return Err("stream entry is not [id, fields]".to_owned());
    };
    let id = std::str::from_utf8(id)
        .ok()
        .and_then(|text| text.split_once('-'))
        .and_then(|(ms, _)| ms.parse::<u64>().ok())
        .ok_or_else(|| {
            format!(
                "stream entry id {:?} is not N-0",
                String::from_utf8_lossy(id)
            )
        })?;
    let (mut name, mut message, mut micros) = (None, None, None);
    for pair in fields.chunks(2) {
        if let [Value::BulkString(field), Value::BulkString(value)] = pair {
            let text = String::from_utf8_lossy(value);
            match field.as_slice() {
                b"n" => name = Some(text.into_owned()),
                b"m" => message = Some(text.into_owned()),
                b"t" => micros = text.parse::<u64>().ok(),
                _ => {}
            }
        }
    }
    let (Some(name), Some(message)) = (name, message) else {
        return Err(format!("stream entry {id} lacks its name or message"));
    };
    let sent_micros = micros.unwrap_or(0);
    Ok(Entry {
        message: StoredMessage::encode(id, &name, &message, sent_micros / 1000),
        sent_micros,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_xread_reply_becomes_messages_in_order() {
        let wire = b"*1\r\n*2\r\n$3\r\nk:l\r\n*2\r\n*2\r\n$4\r\n17-0\r\n*6\r\n$1\r\nn\r\n$3\r\nann\r\n$1\r\nm\r\n$2\r\nhi\r\n$1\r\nt\r\n$7\r\n5000123\r\n*2\r\n$4\r\n18-0\r\n*6\r\n$1\r\nn\r\n$0\r\n\r\n$1\r\nm\r\n$3\r\n\xc3\xa9!\r\n$1\r\nt\r\n$1\r\n7\r\n";
        let value = redis::parse_redis_value(wire).expect("valid RESP");
        let entries = parse_xread(value).expect("parses");
        let decoded: Vec<_> = entries.iter().map(|e| e.message.decode()).collect();
        assert_eq!(
            decoded
                .iter()
                .map(|m| (m.id, m.name.as_str(), m.message.as_str(), m.ts))
                .collect::<Vec<_>>(),
            [(17, "ann", "hi", 5000), (18, "", "é!", 0)]
        );
        assert_eq!(entries[0].sent_micros, 5_000_123);
        assert!(
            parse_xread(Value::Nil)
                .expect("nil is no entries")
                .is_empty()
        );
        assert!(parse_xread(Value::Int(3)).is_err());
    }
}
