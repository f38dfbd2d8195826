//! Random identifiers and secrets from the operating system's CSPRNG.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// `n` random bytes. The OS RNG failing is not recoverable, so it aborts the request loudly.
pub fn bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    #[allow(clippy::expect_used)]
    getrandom::fill(&mut buf).expect("the operating system's random source failed");
    buf
}

/// A URL-safe random token carrying `N` bytes of entropy.
pub fn token<const N: usize>() -> String {
    URL_SAFE_NO_PAD.encode(bytes::<N>())
}

/// A lowercase hex identifier carrying `N` bytes of entropy.
pub fn hex_id<const N: usize>() -> String {
    hex(&bytes::<N>())
}

/// Lowercase hex, digit by digit: this runs on every request (request and call-record ids, API
/// key digests), and a `format!` per byte showed in a profile.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(2 * bytes.len());
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_ids_are_lowercase_hex_of_twice_the_bytes_and_differ() {
        let (a, b) = (hex_id::<8>(), hex_id::<8>());
        assert_eq!(a.len(), 16);
        assert!(a.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')), "{a}");
        assert_ne!(a, b, "64 random bits repeat once in 2^64");
        assert_eq!(hex_id::<0>(), "");
    }

    #[test]
    fn bytes_are_written_high_digit_first_in_lowercase() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xf0, 0xff, 0x3c]), "000fa5f0ff3c");
        let all: Vec<u8> = (0..=255).collect();
        let expected: String = all.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex(&all), expected);
    }
}
