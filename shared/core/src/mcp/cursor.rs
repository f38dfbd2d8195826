//! Opaque `tools/list` cursors. Clients must not build them, so they are versioned base64.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

const TAG: &str = "tools-v1:";

pub fn encode(offset: usize) -> String {
    URL_SAFE_NO_PAD.encode(format!("{TAG}{offset}"))
}

pub fn decode(cursor: &str) -> Option<usize> {
    let raw = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    let text = std::str::from_utf8(&raw).ok()?;
    text.strip_prefix(TAG)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_garbage() {
        assert_eq!(decode(&encode(17)), Some(17));
        assert_eq!(decode("17"), None);
        assert_eq!(decode("!!!"), None);
        assert_eq!(decode(&URL_SAFE_NO_PAD.encode("other:3")), None);
    }
}
