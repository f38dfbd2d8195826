//! What the rate limits count by: the client's network rather than its exact address.
//!
//! One IPv6 host is usually given a whole /64 (SLAAC, privacy addresses, and any VPS), so a
//! limit per IPv6 address would give one machine 2^64 fresh budgets. IPv6 callers are grouped
//! per /64; IPv4 callers, which rarely hold more than one address, count per address.

use std::net::{IpAddr, Ipv6Addr};

/// The rate-limit bucket of a client address: `203.0.113.7`, `2001:db8:1:2::/64`. An IPv4
/// address in IPv6 form (`::ffff:203.0.113.7`, from a dual-stack socket) is the IPv4 address.
/// Anything that is not an address (`unknown`, when nothing told the edge) is its own bucket.
pub(crate) fn client_network(client_ip: &str) -> String {
    match client_ip.trim().parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => v4.to_string(),
        Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let prefix = u128::from(v6) & (u128::MAX << 64);
                format!("{}/64", Ipv6Addr::from(prefix))
            }
        },
        Err(_) => "unknown".to_owned(),
    }
}

/// Seconds until the fixed window of `window` seconds that holds `now` ends (at least 1): the
/// `Retry-After` of a limit counted per window.
pub(crate) fn seconds_left_in(now_unix: i64, window: i64) -> u64 {
    let window = window.max(1);
    u64::try_from(window - now_unix.rem_euclid(window))
        .unwrap_or(1)
        .max(1)
}

#[cfg(test)]
mod tests {
    use super::{client_network, seconds_left_in};

    #[test]
    fn the_wait_is_what_is_left_of_the_window() {
        assert_eq!(seconds_left_in(7200, 3600), 3600);
        assert_eq!(seconds_left_in(7201, 3600), 3599);
        assert_eq!(seconds_left_in(10_799, 3600), 1);
    }

    #[test]
    fn ipv6_callers_are_grouped_per_64_and_ipv4_per_address() {
        assert_eq!(
            client_network("2001:db8:1:2:aaaa:bbbb:cccc:dddd"),
            "2001:db8:1:2::/64"
        );
        assert_eq!(
            client_network("2001:db8:1:2::1"),
            client_network("2001:db8:1:2:ffff::9")
        );
        assert_ne!(
            client_network("2001:db8:1:2::1"),
            client_network("2001:db8:1:3::1"),
            "another /64"
        );
        assert_eq!(client_network("203.0.113.7"), "203.0.113.7");
        assert_ne!(client_network("203.0.113.7"), client_network("203.0.113.8"));
        assert_eq!(
            client_network("::ffff:203.0.113.7"),
            "203.0.113.7",
            "a v4-mapped address is the v4 address"
        );
        assert_eq!(client_network("not an address"), "unknown");
    }
}
