//! How many bytes a command and a reply take on the wire (RESP2), so `/metrics` can count the
//! broker's traffic: the crate does not expose its socket, so commands are measured as packed and
//! replies re-measured from the parsed value (exact for every RESP2 reply; an error reply counts
//! its text).

use redis::Value;

/// Bytes of `value` as Redis sent it over RESP2.
pub fn reply_len(value: &Value) -> u64 {
    match value {
        // `$-1\r\n` and `*-1\r\n` (a nil array, as XREAD BLOCK answers on timeout) are both 5.
        Value::Nil => 5,
        Value::Int(n) => 3 + digits(*n),
        Value::BulkString(bytes) => bulk_len(bytes.len()),
        Value::Array(items) | Value::Set(items) | Value::Push { data: items, .. } => {
            header_len(items.len()) + items.iter().map(reply_len).sum::<u64>()
        }
        Value::SimpleString(text) => 3 + text.len() as u64,
        Value::Okay => 5,
        Value::Map(pairs) => {
            header_len(pairs.len() * 2)
                + pairs
                    .iter()
                    .map(|(k, v)| reply_len(k) + reply_len(v))
                    .sum::<u64>()
        }
        Value::Attribute { data, .. } => reply_len(data),
        Value::Double(x) => 3 + x.to_string().len() as u64,
        Value::Boolean(_) => 4,
        Value::VerbatimString { text, .. } => bulk_len(text.len() + 4),
        Value::ServerError(e) => {
            3 + e.code().len() as u64 + e.details().map_or(0, |d| 1 + d.len() as u64)
        }
        // RESP3-only types this server never asks for.
        _ => 0,
    }
}

fn bulk_len(len: usize) -> u64 {
    header_len(len) + len as u64 + 2
}

/// `*N\r\n` or `$N\r\n`.
fn header_len(n: usize) -> u64 {
    3 + digits(i64::try_from(n).unwrap_or(i64::MAX))
}

fn digits(n: i64) -> u64 {
    let sign = u64::from(n < 0);
    let mut m = n.unsigned_abs();
    let mut d = 1;
    while m >= 10 {
        m /= 10;
        d += 1;
    }
    sign + d
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every reply shape the broker reads, as raw RESP2 bytes: the length computed from the
    /// parsed value is exactly the number of bytes Redis sent.
    #[test]
    fn reply_len_equals_the_bytes_on_the_wire() {
        let xread = b"*1\r\n*2\r\n$12\r\npushpoll:log\r\n*2\r\n*2\r\n$4\r\n17-0\r\n*6\r\n$1\r\nn\r\n$3\r\nann\r\n$1\r\nm\r\n$0\r\n\r\n$1\r\nt\r\n$16\r\n1700000000000000\r\n*2\r\n$5\r\n123-0\r\n*0\r\n";
        let cases: [&[u8]; 8] = [
            b":1\r\n",
            b":-12345678901\r\n",
            b"+OK\r\n",
            b"+PONG\r\n",
            b"$-1\r\n",
            b"*-1\r\n",
            b"$40\r\n0123456789012345678901234567890123456789\r\n",
            xread,
        ];
        for wire in cases {
            let value = redis::parse_redis_value(wire).expect("valid RESP");
            assert_eq!(
                reply_len(&value),
                wire.len() as u64,
                "{}",
                String::from_utf8_lossy(wire)
            );
        }
    }

    #[test]
    fn digits_counts_signs_and_powers_of_ten() {
        for (n, d) in [
            (0, 1),
            (9, 1),
            (10, 2),
            (-1, 2),
            (1_000_000, 7),
            (i64::MIN, 20),
        ] {
            assert_eq!(digits(n), d, "{n}");
        }
    }
}
