//! Sign-in throttling that slows a guesser down without locking the customer out.
//!
//! Failures are counted per (email, client network): a few are free, and after them each
//! attempt from that pair must wait twice as long as the one before (2, 4, 8 … seconds, at most
//! [`MAX_WAIT_SECONDS`]). Someone guessing a customer's password from elsewhere therefore only
//! slows themselves down: the customer, from their own network, signs in as usual. A second,
//! hard limit per client network across all emails stops one network from spraying many
//! accounts.
//!
//! Every attempt is admitted atomically before bcrypt runs, so guesses in flight at the same
//! time cannot all pass a check made before any of them is counted: the free attempts by a
//! conditional add (at most `free` succeed), and each later one by taking its turn on the
//! pair's wait item with a compare-and-swap (one winner per opening). The attempt that uses the
//! last free place closes the gate before it reaches bcrypt.

use squaremcp_core::{PutMode, Store, StoreError, Timestamp};

use crate::Auth;
use crate::client_network::{client_network, seconds_left_in};
use crate::crypto::sha256_hex;
use crate::login::LoginError;

/// The longest wait between two attempts of one (email, client network).
pub const MAX_WAIT_SECONDS: i64 = 15 * 60;
/// How long a pair's failures are remembered (windows aligned to UTC days); its wait item
/// lives as long, so that it exists whenever the day's count calls for it.
const PAIR_WINDOW_SECONDS: i64 = 24 * 3600;

/// The wait before the next attempt once `beyond` attempts were made past the free ones:
/// 2^(beyond + 1) seconds, at most [`MAX_WAIT_SECONDS`].
pub(crate) fn wait_after(beyond: u64) -> i64 {
    let exponent = u32::try_from(beyond.saturating_add(1))
        .unwrap_or(u32::MAX)
        .min(20);
    2_i64.pow(exponent).min(MAX_WAIT_SECONDS)
}

/// The places an admitted attempt holds; given back when the password was right.
pub(crate) struct Admission {
    pair_key: String,
    wait_key: String,
    network_key: String,
    /// The wait this attempt sets if it fails (counted from the failure, since bcrypt may
    /// take a while): none while free attempts are left.
    wait_on_failure: Option<i64>,
}

fn refused(client_network: &str, retry_after: i64) -> LoginError {
    // Logged by network, never by email: the log must not say whose account is under attack
    // to someone who can read logs but not the store.
    tracing::warn!(
        client_network,
        retry_after,
        "sign-in attempt refused: too many failed attempts"
    );
    LoginError::RateLimited {
        retry_after: u64::try_from(retry_after.max(1)).unwrap_or(1),
    }
}

fn open_at(value: &[u8]) -> Option<i64> {
    std::str::from_utf8(value).ok()?.parse().ok()
}

impl Auth {
    /// Admits one sign-in attempt for `email` (normalised) from `client_ip`, or says how many
    /// seconds to wait. The admission counts as a failure until [`Auth::admitted_attempt_succeeded`].
    pub(crate) async fn admit_login_attempt(
        &self,
        email: &str,
        client_ip: &str,
    ) -> Result<Admission, LoginError> {
        let store = self.gateway.store();
        let now = self.now();
        let network = client_network(client_ip);
        let pair = sha256_hex(&format!("{email}\n{network}"));
        let mut admission = Admission {
            pair_key: format!(
                "ratelimit:login:pair:{pair}:{}",
                now.unix() / PAIR_WINDOW_SECONDS
            ),
            wait_key: format!("ratelimit:login:wait:{pair}"),
            network_key: format!(
                "ratelimit:login:ip:{network}:{}",
                now.unix() / self.settings.login_window.max(1)
            ),
            wait_on_failure: None,
        };
        let free = self.settings.login_free_failures;
        // Each window's counters go when their window has (the key names the window).
        let pair_window_ends = Timestamp::from_unix((now.unix() / PAIR_WINDOW_SECONDS + 1) * PAIR_WINDOW_SECONDS);
        let login_window = self.settings.login_window.max(1);
        let network_window_ends = Timestamp::from_unix((now.unix() / login_window + 1) * login_window);
        match store
            .add_to_expiring_counter(&admission.pair_key, 1, Some(free), pair_window_ends)
            .await
        {
            // The last free place closes the gate now, not after bcrypt: guesses arriving
            // while this one is checked must wait too.
            Ok(count) if count >= free => {
                set_wait(store, &admission.wait_key, now, wait_after(0)).await?;
                admission.wait_on_failure = Some(wait_after(0));
            }
            Ok(_) => {}
            Err(StoreError::LimitReached { current, .. }) => {
                let beyond = current.saturating_sub(free);
                self.take_turn(&admission.wait_key, beyond, &network)
                    .await?;
                store.add_to_expiring_counter(&admission.pair_key, 1, None, pair_window_ends).await?;
                admission.wait_on_failure = Some(wait_after(beyond + 1));
            }
            Err(e) => return Err(e.into()),
        }
        let per_network = self.settings.login_failures_per_ip;
        match store
            .add_to_expiring_counter(&admission.network_key, 1, Some(per_network), network_window_ends)
            .await
        {
            Ok(_) => Ok(admission),
            Err(refusal) => {
                // This attempt never reaches bcrypt, so it is no failure of the pair.
                give_back(store, &admission.pair_key, 1).await;
                match refusal {
                    StoreError::LimitReached { .. } => {
                        let left = seconds_left_in(now.unix(), self.settings.login_window);
                        Err(refused(
                            &network,
                            i64::try_from(left).unwrap_or(MAX_WAIT_SECONDS),
                        ))
                    }
                    other => Err(other.into()),
                }
            }
        }
    }

    /// Past the free attempts: the pair's gate must be open, and of several attempts finding
    /// it open, only the one whose swap lands goes on (and closes it again for longer).
    async fn take_turn(
        &self,
        wait_key: &str,
        beyond: u64,
        network: &str,
    ) -> Result<(), LoginError> {
        let store = self.gateway.store();
        let now = self.now();
        let Some(current) = store.get_item(wait_key, now).await? else {
            // The gate was not written (its writer is still on its way, or failed): close it
            // here, so that a lost write cannot leave the pair without its wait.
            let wait = wait_after(beyond);
            let expires = now.plus_seconds(PAIR_WINDOW_SECONDS);
            match store
                .put_item(
                    wait_key,
                    (now.unix() + wait).to_string().as_bytes(),
                    Some(expires),
                    PutMode::CreateOnly,
                    now,
                )
                .await
            {
                Ok(()) | Err(StoreError::Conflict(_)) => return Err(refused(network, wait)),
                Err(e) => return Err(e.into()),
            }
        };
        // A value that does not read as a time is taken as open: the swap below replaces it.
        let opens = open_at(&current).unwrap_or(0);
        if opens > now.unix() {
            return Err(refused(network, opens.saturating_sub(now.unix())));
        }
        let next = (now.unix() + wait_after(beyond + 1)).to_string();
        let expires = now.plus_seconds(PAIR_WINDOW_SECONDS);
        if store
            .swap_item(wait_key, &current, next.as_bytes(), Some(expires), now)
            .await?
        {
            Ok(())
        } else {
            // Another attempt took this opening.
            Err(refused(network, wait_after(beyond + 1)))
        }
    }

    /// The password was wrong: the count stays, and the wait, if any, starts now.
    pub(crate) async fn admitted_attempt_failed(&self, admission: Admission) {
        if let Some(wait) = admission.wait_on_failure
            && let Err(error) =
                set_wait(self.gateway.store(), &admission.wait_key, self.now(), wait).await
        {
            // The wait set at admission still holds; it only started a little earlier.
            tracing::warn!(%error, "a sign-in's wait could not be restarted");
        }
    }

    /// The password was right: the pair's failures are forgiven (a person who mistyped and
    /// then got it right does not keep waiting) and the network's place is given back.
    pub(crate) async fn admitted_attempt_succeeded(&self, admission: Admission) {
        let store = self.gateway.store();
        match store.counter(&admission.pair_key).await {
            Ok(count) => give_back(store, &admission.pair_key, count).await,
            Err(error) => {
                tracing::warn!(%error, "a sign-in's failure count could not be read to be reset")
            }
        }
        if let Err(error) = store.delete_item(&admission.wait_key).await {
            tracing::warn!(%error, "a sign-in's wait could not be lifted");
        }
        give_back(store, &admission.network_key, 1).await;
    }
}

async fn set_wait(
    store: &dyn Store,
    wait_key: &str,
    now: Timestamp,
    wait: i64,
) -> Result<(), StoreError> {
    let expires = now.plus_seconds(PAIR_WINDOW_SECONDS);
    store
        .put_item(
            wait_key,
            (now.unix() + wait).to_string().as_bytes(),
            Some(expires),
            PutMode::Replace,
            now,
        )
        .await
}

/// Takes `delta` off a failure counter. Failing only leaves attempts counted until the window
/// ends, so the answer does not change; the key is not logged, as it names the client network.
async fn give_back(store: &dyn Store, key: &str, delta: u64) {
    if let Err(error) = store.subtract_from_counter(key, delta).await {
        tracing::warn!(%error, "a sign-in attempt's place could not be given back");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_the_cap() {
        assert_eq!(
            (0..5).map(wait_after).collect::<Vec<_>>(),
            [2, 4, 8, 16, 32]
        );
        assert_eq!(wait_after(8), 512);
        assert_eq!(wait_after(9), MAX_WAIT_SECONDS, "1024 s is past the cap");
        assert_eq!(wait_after(40), MAX_WAIT_SECONDS);
        assert_eq!(wait_after(u64::MAX), MAX_WAIT_SECONDS);
    }
}
