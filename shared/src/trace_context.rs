//! W3C Trace Context's `traceparent` header (`00-{trace-id}-{parent-id}-{flags}`), read by the
//! gateway (which continues or starts the trace) and by the function (which logs it), so one
//! call can be followed across both logs.

use std::fmt;

/// A well-formed `traceparent`: ids as lowercase hex, never all zeros.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    pub trace_id: [u8; 16],
    pub parent_id: [u8; 8],
    pub flags: u8,
}

/// The value of one lowercase hex digit (the spec allows no uppercase).
fn nibble(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        _ => None,
    }
}

fn hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let digits = text.as_bytes();
    if digits.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// `bytes` as lowercase hex into `out` (twice as long): the header is built on every call, and
/// `write!` per byte was a visible share of the gateway's CPU.
fn encode_hex(bytes: &[u8], out: &mut [u8]) {
    for (byte, pair) in bytes.iter().zip(out.chunks_exact_mut(2)) {
        pair[0] = DIGITS[usize::from(byte >> 4)];
        pair[1] = DIGITS[usize::from(byte & 0x0f)];
    }
}

/// The length of a version-00 `traceparent`: `00-` + 32 + `-` + 16 + `-` + 2.
pub const TRACEPARENT_LEN: usize = 55;

impl TraceParent {
    /// The spec's parsing rules: version `00` is exactly four fields; a later version may add
    /// fields after a `-`; version `ff` and all-zero ids are invalid.
    pub fn parse(value: &str) -> Option<Self> {
        let mut fields = value.split('-');
        let version: [u8; 1] = hex(fields.next()?)?;
        let trace_id = hex(fields.next()?)?;
        let parent_id = hex(fields.next()?)?;
        let [flags] = hex(fields.next()?)?;
        let extra = fields.next().is_some();
        let valid = match version[0] {
            0 => !extra,
            0xff => false,
            _ => true,
        };
        (valid && trace_id != [0; 16] && parent_id != [0; 8]).then_some(Self {
            trace_id,
            parent_id,
            flags,
        })
    }

    /// The trace id alone, as the logs show it.
    pub fn trace_id_hex(&self) -> String {
        self.trace_id().to_string()
    }

    /// The trace id for a log field: formatted where the line is written, with no `String` on
    /// the way.
    pub fn trace_id(&self) -> TraceId {
        TraceId(self.trace_id)
    }
}

/// A trace id, displayed as the logs show it: 32 lowercase hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceId(pub [u8; 16]);

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = [0u8; 32];
        encode_hex(&self.0, &mut text);
        // Hex digits are ASCII.
        f.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?)
    }
}

impl TraceParent {
    /// The header's bytes, always version `00` (the one this code knows).
    pub fn to_bytes(&self) -> [u8; TRACEPARENT_LEN] {
        let mut out = [b'-'; TRACEPARENT_LEN];
        out[..2].copy_from_slice(b"00");
        encode_hex(&self.trace_id, &mut out[3..35]);
        encode_hex(&self.parent_id, &mut out[36..52]);
        encode_hex(&[self.flags], &mut out[53..55]);
        out
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.to_bytes();
        f.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const SPEC_EXAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn the_specs_example_round_trips() {
        let parsed = TraceParent::parse(SPEC_EXAMPLE).unwrap();
        assert_eq!(parsed.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(parsed.flags, 1);
        assert_eq!(parsed.to_string(), SPEC_EXAMPLE);
        // A later version may carry more fields.
        assert!(TraceParent::parse(&format!("01{}-extra", &SPEC_EXAMPLE[2..])).is_some());
    }

    #[test]
    fn malformed_values_are_refused() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
            "00-4bf92f3577b34da6a3ce929d0e0e47é6-00f067aa0ba902b7-01",
        ] {
            assert!(TraceParent::parse(bad).is_none(), "{bad}");
        }
    }
}
