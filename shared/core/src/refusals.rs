//! Calls that never reached the platform (refused at the plan limit, or invalid: arguments that
//! fail the schema, no credential for the platform) are logged in bulk. The first of a kind
//! (customer, tool, outcome) is written at once, as any call; the ones that follow within
//! [`REFUSAL_WINDOW`] are held in memory and written as one record that says how many calls it
//! stands for ([`CallRecord::calls`]). A client retrying a refused call in a loop then costs a
//! store write per window instead of one per call. What a process holds when it ends (at most
//! one window's repeats) is lost; the usage counter is never involved (these calls do not count).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use crate::{CallRecord, CustomerId};

/// How long repeats of a refused or invalid call are held before their one record is written.
pub const REFUSAL_WINDOW: Duration = Duration::from_secs(5);

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct Kind {
    customer: CustomerId,
    tool: String,
    outcome: String,
}

impl Kind {
    fn of(record: &CallRecord) -> Self {
        Self {
            customer: record.customer_id.clone(),
            tool: record.tool.clone(),
            outcome: record.outcome.clone(),
        }
    }
}

/// What to do with a refused or invalid call's record.
#[derive(Debug, PartialEq)]
pub enum Admission {
    /// The first of its kind in a window: write it now, and call [`RefusalLog::close`] with the
    /// token after [`REFUSAL_WINDOW`].
    WriteNow(WindowToken),
    /// Held: folded into the window's aggregate record.
    Held,
}

/// Names an open window, for [`RefusalLog::close`].
#[derive(Debug, PartialEq)]
pub struct WindowToken(Kind);

/// The open windows of one process.
#[derive(Default)]
pub struct RefusalLog {
    /// Per kind: the repeats so far (the first held call's record, with `calls` summing them).
    open: Mutex<HashMap<Kind, Option<CallRecord>>>,
}

impl RefusalLog {
    pub fn admit(&self, record: &CallRecord) -> Admission {
        let kind = Kind::of(record);
        let Ok(mut open) = self.open.lock() else {
            return Admission::WriteNow(WindowToken(kind));
        };
        match open.get_mut(&kind) {
            None => {
                open.insert(kind.clone(), None);
                Admission::WriteNow(WindowToken(kind))
            }
            Some(held @ None) => {
                *held = Some(record.clone());
                Admission::Held
            }
            Some(Some(aggregate)) => {
                aggregate.calls = aggregate.calls.saturating_add(record.calls);
                aggregate.duration_ms = aggregate.duration_ms.max(record.duration_ms);
                Admission::Held
            }
        }
    }

    /// Ends a window: its aggregate record, if calls were held, to be written now.
    pub fn close(&self, token: WindowToken) -> Option<CallRecord> {
        self.open.lock().ok().and_then(|mut open| open.remove(&token.0)).flatten()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use serde_json::json;

    use super::*;
    use crate::{Platform, Timestamp};

    fn refused(customer: &CustomerId, tool: &str, outcome: &str, duration_ms: u64) -> CallRecord {
        let at = Timestamp::from_unix(1_700_000_000);
        CallRecord {
            id: CallRecord::new_id(at),
            customer_id: customer.clone(),
            at,
            tool: tool.into(),
            platform: Platform::Telegram,
            auth_method: "api_key".into(),
            client: None,
            duration_ms,
            upstream_requests: 0,
            outcome: outcome.into(),
            counted: false,
            arguments: json!({}),
            expires_at: at.plus_seconds(60),
            calls: 1,
        }
    }

    #[test]
    fn the_first_is_written_and_the_repeats_become_one_record() {
        let log = RefusalLog::default();
        let alice = CustomerId::generate();
        let Admission::WriteNow(token) = log.admit(&refused(&alice, "telegram_get_me", "limit_reached", 1)) else {
            panic!("the first is written at once")
        };
        let first_held = refused(&alice, "telegram_get_me", "limit_reached", 2);
        assert_eq!(log.admit(&first_held), Admission::Held);
        for ms in [7, 3] {
            assert_eq!(log.admit(&refused(&alice, "telegram_get_me", "limit_reached", ms)), Admission::Held);
        }
        let aggregate = log.close(token).expect("three calls were held");
        assert_eq!((aggregate.calls, aggregate.duration_ms), (3, 7));
        assert_eq!(
            (aggregate.id.as_str(), aggregate.at),
            (first_held.id.as_str(), first_held.at),
            "named after the first held call"
        );
        assert!(
            matches!(
                log.admit(&refused(&alice, "telegram_get_me", "limit_reached", 1)),
                Admission::WriteNow(_)
            ),
            "a new window"
        );
    }

    #[test]
    fn kinds_are_kept_apart_and_a_window_without_repeats_writes_nothing_more() {
        let log = RefusalLog::default();
        let (alice, bob) = (CustomerId::generate(), CustomerId::generate());
        let mut tokens = Vec::new();
        for (customer, tool, outcome) in [
            (&alice, "telegram_get_me", "limit_reached"),
            (&alice, "telegram_get_me", "invalid_input"),
            (&alice, "telegram_send_message", "limit_reached"),
            (&bob, "telegram_get_me", "limit_reached"),
        ] {
            match log.admit(&refused(customer, tool, outcome, 1)) {
                Admission::WriteNow(token) => tokens.push(token),
                Admission::Held => panic!("{tool} {outcome}: a kind of its own"),
            }
        }
        assert!(tokens.into_iter().all(|token| log.close(token).is_none()));
    }
}
