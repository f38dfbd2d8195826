//! The store contract, written once against `dyn Store` and run against every backend; the
//! queue contract likewise, in [`queue`].
//!
//! Each public function checks one behaviour on a store it is handed and panics with a message
//! saying what broke. The factory must hand each test a fresh, empty store (list tests count
//! what they find). A backend's test file is three lines:
//!
//! ```text
//! use std::sync::Arc;
//! squaremcp_store_conformance::store_conformance_tests!(Arc::new(my_backend::Store::new_for_tests()));
//! ```
//!
//! The expression is evaluated inside each async test, so it may `.await`; it must produce
//! something that coerces to `Arc<dyn Store>`. The calling crate needs `tokio` (with the
//! `macros` and `rt-multi-thread` features) as a dev-dependency.

// Test support: a failed expectation is meant to panic with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod billing;
mod binding;
mod fixtures;
mod guarded;
pub mod queue;

use std::collections::BTreeSet;
use std::sync::Arc;

use squaremcp_core::{AccountName, ApiKeyHash, ApiKeyId, CustomerId, Email, Platform, PutMode, Store, StoreError};
use tokio::task::JoinSet;

use self::fixtures::{NOW, api_key, credential, customer, unique_key};
pub use self::billing::{
    a_month_is_invoiced_with_the_plan_it_began_with, a_month_without_plan_history_uses_the_current_plan_and_records_it,
    the_invoice_lease_is_renewed_after_every_customer,
};
pub use self::binding::{CredentialKeys, RawCredentials, credentials_copied_to_other_keys_do_not_open};
pub use self::guarded::guarded;

#[doc(hidden)]
pub mod __private {
    pub use squaremcp_core::Store;
}

/// Expands to one `#[tokio::test]` per behaviour, each with a store made by `$make_store`.
#[macro_export]
macro_rules! store_conformance_tests {
    ($make_store:expr) => {
        $crate::store_conformance_tests!(@each $make_store;
            customers_round_trip,
            customer_ids_are_unique,
            email_is_unique_case_insensitively,
            list_customers_pages,
            api_keys_by_hash_and_revocation,
            api_key_hashes_and_ids_are_unique,
            revoke_is_scoped_to_owner,
            credentials_upsert_list_delete_and_isolation,
            credential_swap_is_compare_and_swap,
            counter_adds_and_refuses_past_limit,
            counter_respects_limit_exactly_under_concurrency,
            counter_subtracts_without_going_below_zero,
            expiring_counters_count_like_counters,
            single_use_items_are_taken_once,
            expired_single_use_items_are_invisible_and_replaceable,
            items_put_get_replace_delete,
            create_only_items_conflict_while_live,
            expired_items_are_invisible_and_replaceable,
            swap_item_is_compare_and_swap_under_concurrency,
            customer_plan_changes,
            call_records_by_customer_and_time,
            recording_a_call_adjusts_its_counter_atomically,
            a_month_is_invoiced_with_the_plan_it_began_with,
            a_month_without_plan_history_uses_the_current_plan_and_records_it,
            the_invoice_lease_is_renewed_after_every_customer,
        );
    };
    (@each $make_store:expr; $($behaviour:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $behaviour() {
                let store: ::std::sync::Arc<dyn $crate::__private::Store> = $make_store;
                $crate::$behaviour(store).await;
            }
        )+
    };
}

// Customers.

pub async fn customers_round_trip(store: Arc<dyn Store>) {
    let with_password = customer("ada@example.com", Some("$2b$12$hash"));
    let without_password = customer("grace@example.com", None);
    store.insert_customer(&with_password).await.expect("inserting a new customer");
    store.insert_customer(&without_password).await.expect("inserting a second customer");

    for expected in [&with_password, &without_password] {
        let by_id = store.customer(&expected.id).await.unwrap();
        assert_eq!(by_id.as_ref(), Some(expected), "customer by id must return exactly what was inserted");
        let by_email = store.customer_by_email(&expected.email).await.unwrap();
        assert_eq!(by_email.as_ref(), Some(expected), "customer by email must return exactly what was inserted");
    }
    assert_eq!(store.customer(&CustomerId::generate()).await.unwrap(), None, "an unknown id finds nothing");
    let nobody = Email::parse("nobody@example.com").unwrap();
    assert_eq!(store.customer_by_email(&nobody).await.unwrap(), None, "an unknown email finds nothing");
}

pub async fn customer_ids_are_unique(store: Arc<dyn Store>) {
    let first = customer("first@example.com", None);
    store.insert_customer(&first).await.unwrap();
    let mut same_id = customer("second@example.com", None);
    same_id.id = first.id.clone();
    let result = store.insert_customer(&same_id).await;
    assert!(
        matches!(result, Err(StoreError::Conflict(_))),
        "a second customer with the same id must conflict, got {result:?}"
    );
    assert_eq!(
        store.customer(&first.id).await.unwrap(),
        Some(first),
        "the conflicting insert must not change the first"
    );
    let second_email = store.customer_by_email(&same_id.email).await.unwrap();
    assert_eq!(second_email, None, "the conflicting insert must leave no trace under its email");
}

pub async fn email_is_unique_case_insensitively(store: Arc<dyn Store>) {
    let first = customer("Ada@Example.com", None);
    store.insert_customer(&first).await.unwrap();
    let shouted = customer("ADA@EXAMPLE.COM", None);
    let result = store.insert_customer(&shouted).await;
    assert!(
        matches!(result, Err(StoreError::Conflict(_))),
        "the same email in other case must conflict, got {result:?}"
    );
    assert_eq!(store.customer(&shouted.id).await.unwrap(), None, "the conflicting customer must not be stored");
    let found = store.customer_by_email(&Email::parse("ada@EXAMPLE.com").unwrap()).await.unwrap();
    assert_eq!(found, Some(first), "lookup by email ignores case and finds the first customer");
}

pub async fn list_customers_pages(store: Arc<dyn Store>) {
    let mut ids = Vec::new();
    for n in 0..5 {
        let c = customer(&format!("user{n}@example.com"), None);
        store.insert_customer(&c).await.unwrap();
        ids.push(c.id);
    }
    ids.sort();

    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut page_sizes = Vec::new();
    loop {
        let page = store.list_customers(after.as_deref(), 2).await.unwrap();
        page_sizes.push(page.items.len());
        seen.extend(page.items.iter().map(|c| c.id.clone()));
        match page.next {
            Some(next) => {
                let last = page.items.last().expect("a page with a `next` has items");
                assert_eq!(next, last.id.as_str(), "`next` is the last id of the page");
                after = Some(next);
            }
            None => break,
        }
        assert!(page_sizes.len() <= 5, "paging must end");
    }
    assert_eq!(page_sizes, [2, 2, 1], "five customers in pages of two");
    assert_eq!(seen, ids, "pages list every customer once, ordered by id");

    let exact = store.list_customers(None, 5).await.unwrap();
    assert_eq!(exact.items.len(), 5);
    assert_eq!(exact.next, None, "`next` is set only when more customers exist");
    let large = store.list_customers(None, 100).await.unwrap();
    assert_eq!(large.items.iter().map(|c| c.id.clone()).collect::<Vec<_>>(), ids);
    assert_eq!(large.next, None);
    let after_last = store.list_customers(Some(ids[4].as_str()), 2).await.unwrap();
    assert_eq!((after_last.items.len(), after_last.next), (0, None), "nothing comes after the last id");
}

// API keys.

pub async fn api_keys_by_hash_and_revocation(store: Arc<dyn Store>) {
    let owner = customer("keys@example.com", None);
    store.insert_customer(&owner).await.unwrap();
    // Inserted out of order: listing is by created_at, then id for keys created the same second.
    let late = api_key(&owner.id, NOW.plus_seconds(60));
    let early_a = api_key(&owner.id, NOW);
    let early_b = api_key(&owner.id, NOW);
    for key in [&late, &early_a, &early_b] {
        store.insert_api_key(key).await.expect("inserting a new API key");
    }

    let found = store.api_key_by_hash(&late.hash).await.unwrap();
    assert_eq!(found.as_ref(), Some(&late), "a key found by hash is exactly what was inserted");
    let unknown = ApiKeyHash::from_stored("0".repeat(64));
    assert_eq!(store.api_key_by_hash(&unknown).await.unwrap(), None, "an unknown hash finds nothing");

    let mut expected = vec![early_a.clone(), early_b.clone()];
    expected.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
    expected.push(late.clone());
    assert_eq!(store.list_api_keys(&owner.id).await.unwrap(), expected, "keys are listed by created_at, then id");

    let revoked_at = NOW.plus_seconds(120);
    assert!(store.revoke_api_key(&owner.id, &late.id, revoked_at).await.unwrap(), "revoking an active key succeeds");
    let after = store.api_key_by_hash(&late.hash).await.unwrap().expect("a revoked key is still found by hash");
    assert_eq!(after.revoked_at, Some(revoked_at), "the revocation time is recorded");
    assert!(!after.is_active());

    let again = store.revoke_api_key(&owner.id, &late.id, NOW.plus_seconds(999)).await.unwrap();
    assert!(!again, "revoking a revoked key reports false");
    let still = store.api_key_by_hash(&late.hash).await.unwrap().unwrap();
    assert_eq!(still.revoked_at, Some(revoked_at), "a second revocation must not move the time");
    assert!(
        !store.revoke_api_key(&owner.id, &ApiKeyId::generate(), NOW).await.unwrap(),
        "an unknown key reports false"
    );

    let others = store.list_api_keys(&owner.id).await.unwrap();
    let active: Vec<_> = others.iter().filter(|k| k.is_active()).map(|k| k.id.clone()).collect();
    assert_eq!(active, [expected[0].id.clone(), expected[1].id.clone()], "only the revoked key changed");
}

pub async fn api_key_hashes_and_ids_are_unique(store: Arc<dyn Store>) {
    let owner = customer("unique-keys@example.com", None);
    store.insert_customer(&owner).await.unwrap();
    let original = api_key(&owner.id, NOW);
    store.insert_api_key(&original).await.unwrap();

    let mut same_hash = api_key(&owner.id, NOW);
    same_hash.hash = original.hash.clone();
    let result = store.insert_api_key(&same_hash).await;
    assert!(
        matches!(result, Err(StoreError::Conflict(_))),
        "a second key with the same hash must conflict, got {result:?}"
    );

    let mut same_id = api_key(&owner.id, NOW);
    same_id.id = original.id.clone();
    let result = store.insert_api_key(&same_id).await;
    assert!(
        matches!(result, Err(StoreError::Conflict(_))),
        "a second key with the same id must conflict, got {result:?}"
    );

    assert_eq!(
        store.api_key_by_hash(&original.hash).await.unwrap(),
        Some(original.clone()),
        "the original is unchanged"
    );
    assert_eq!(store.api_key_by_hash(&same_id.hash).await.unwrap(), None, "the refused key left no trace");
    assert_eq!(store.list_api_keys(&owner.id).await.unwrap(), [original], "only the original key is listed");
}

pub async fn revoke_is_scoped_to_owner(store: Arc<dyn Store>) {
    let owner = customer("owner@example.com", None);
    let intruder = customer("intruder@example.com", None);
    store.insert_customer(&owner).await.unwrap();
    store.insert_customer(&intruder).await.unwrap();
    let key = api_key(&owner.id, NOW);
    store.insert_api_key(&key).await.unwrap();

    let revoked = store.revoke_api_key(&intruder.id, &key.id, NOW).await.unwrap();
    assert!(!revoked, "another customer must not be able to revoke the key");
    let found = store.api_key_by_hash(&key.hash).await.unwrap().unwrap();
    assert!(found.is_active(), "the key stays active after another customer's attempt");
    assert!(store.list_api_keys(&intruder.id).await.unwrap().is_empty(), "keys are listed only for their owner");
    assert!(store.revoke_api_key(&owner.id, &key.id, NOW).await.unwrap(), "the owner can revoke it");
}

// Credentials.

pub async fn credentials_upsert_list_delete_and_isolation(store: Arc<dyn Store>) {
    let a = customer("creds-a@example.com", None);
    let b = customer("creds-b@example.com", None);
    store.insert_customer(&a).await.unwrap();
    store.insert_customer(&b).await.unwrap();
    let a_telegram = credential(&a.id, Platform::Telegram, "default", 1);
    let a_discord = credential(&a.id, Platform::Discord, "default", 1);
    let a_email_work = credential(&a.id, Platform::Email, "work", 1);
    let a_email_home = credential(&a.id, Platform::Email, "home", 1);
    let b_telegram = credential(&b.id, Platform::Telegram, "default", 1);
    for record in [&a_telegram, &a_discord, &a_email_work, &a_email_home, &b_telegram] {
        store.put_credential(record).await.expect("putting a credential");
    }

    let all_of_a = store.credentials(&a.id, None).await.unwrap();
    let expected = [&a_discord, &a_email_home, &a_email_work, &a_telegram].map(Clone::clone);
    assert_eq!(all_of_a, expected, "a customer's credentials, ordered by platform name then account");
    let email_of_a = store.credentials(&a.id, Some(Platform::Email)).await.unwrap();
    assert_eq!(email_of_a, [a_email_home.clone(), a_email_work.clone()], "filtering by platform");
    assert!(store.credentials(&a.id, Some(Platform::Snapchat)).await.unwrap().is_empty());
    assert_eq!(
        store.credentials(&b.id, None).await.unwrap(),
        std::slice::from_ref(&b_telegram),
        "B sees only B's credentials"
    );

    // A put replaces the record, key version included.
    let mut replaced = credential(&a.id, Platform::Telegram, "default", 7);
    replaced.created_at = a_telegram.created_at;
    replaced.updated_at = NOW.plus_seconds(300);
    store.put_credential(&replaced).await.expect("replacing a credential");
    let telegram_of_a = store.credentials(&a.id, Some(Platform::Telegram)).await.unwrap();
    assert_eq!(telegram_of_a, [replaced], "a put replaces the record for the same customer, platform and account");
    assert_eq!(
        store.credentials(&b.id, None).await.unwrap(),
        std::slice::from_ref(&b_telegram),
        "B's record is untouched"
    );

    let work = AccountName::parse("work").unwrap();
    assert!(store.delete_credential(&a.id, Platform::Email, &work).await.unwrap(), "deleting an existing credential");
    assert!(!store.delete_credential(&a.id, Platform::Email, &work).await.unwrap(), "deleting it again reports false");
    let default = AccountName::default_account();
    assert!(store.delete_credential(&a.id, Platform::Telegram, &default).await.unwrap());
    assert_eq!(store.credentials(&b.id, None).await.unwrap(), [b_telegram], "deleting A's record leaves B's");
    let left: Vec<_> = store.credentials(&a.id, None).await.unwrap().into_iter().map(|r| r.account).collect();
    assert_eq!(left, [default, AccountName::parse("home").unwrap()], "discord/default and email/home remain");
}

pub async fn credential_swap_is_compare_and_swap(store: Arc<dyn Store>) {
    let owner = customer("swap@example.com", None);
    store.insert_customer(&owner).await.unwrap();
    let original = credential(&owner.id, Platform::Telegram, "default", 1);
    store.put_credential(&original).await.unwrap();

    let mut rewrapped = credential(&owner.id, Platform::Telegram, "default", 2);
    rewrapped.created_at = original.created_at;
    rewrapped.updated_at = NOW.plus_seconds(10);
    assert!(store.swap_credential(&rewrapped, &original.sealed).await.unwrap(), "a swap from the stored value wins");
    let stored = store.credentials(&owner.id, Some(Platform::Telegram)).await.unwrap();
    assert_eq!(stored, std::slice::from_ref(&rewrapped), "the swapped record replaces the old one whole");

    let late = credential(&owner.id, Platform::Telegram, "default", 3);
    assert!(!store.swap_credential(&late, &original.sealed).await.unwrap(), "a swap from a stale value fails");
    let missing = credential(&owner.id, Platform::Discord, "default", 2);
    assert!(!store.swap_credential(&missing, &original.sealed).await.unwrap(), "a swap of a missing record fails");
    assert!(store.credentials(&owner.id, Some(Platform::Discord)).await.unwrap().is_empty(), "and creates nothing");
    let stored = store.credentials(&owner.id, None).await.unwrap();
    assert_eq!(stored, [rewrapped.clone()], "failed swaps change nothing");

    let mut tasks = JoinSet::new();
    for n in 0..10 {
        let (store, expected) = (Arc::clone(&store), rewrapped.sealed.clone());
        let candidate = credential(&owner.id, Platform::Telegram, "default", 10 + n);
        tasks.spawn(async move { store.swap_credential(&candidate, &expected).await.unwrap() });
    }
    let winners = tasks.join_all().await.into_iter().filter(|won| *won).count();
    assert_eq!(winners, 1, "exactly one of 10 concurrent swaps from the same value wins");
}

// Counters.

pub async fn counter_adds_and_refuses_past_limit(store: Arc<dyn Store>) {
    let key = unique_key("usage");
    assert_eq!(store.counter(&key).await.unwrap(), 0, "a counter never written reads 0");
    assert_eq!(store.add_to_counter(&key, 5, None).await.unwrap(), 5, "an add without limit returns the new value");
    assert_eq!(store.add_to_counter(&key, 3, Some(8)).await.unwrap(), 8, "reaching the limit exactly is allowed");
    let refused = store.add_to_counter(&key, 1, Some(8)).await;
    assert!(
        matches!(refused, Err(StoreError::LimitReached { current: 8, limit: 8 })),
        "passing the limit is refused with the current value, got {refused:?}"
    );
    assert_eq!(store.counter(&key).await.unwrap(), 8, "a refused add changes nothing");

    let fresh = unique_key("usage");
    let refused = store.add_to_counter(&fresh, 10, Some(5)).await;
    assert!(
        matches!(refused, Err(StoreError::LimitReached { current: 0, limit: 5 })),
        "a first add past the limit is refused, got {refused:?}"
    );
    assert_eq!(store.counter(&fresh).await.unwrap(), 0, "a refused first add writes nothing");
    assert_eq!(store.counter(&key).await.unwrap(), 8, "counters are independent");
}

pub async fn counter_respects_limit_exactly_under_concurrency(store: Arc<dyn Store>) {
    counter_respects_limit_exactly_across_handles(vec![store]).await;
}

/// 200 concurrent adds of 1 with limit 50, spread over `handles` (several handles on the same
/// data stand for several processes): exactly 50 succeed, with the values 1 to 50.
pub async fn counter_respects_limit_exactly_across_handles(handles: Vec<Arc<dyn Store>>) {
    const ADDS: usize = 200;
    const LIMIT: u64 = 50;
    assert!(!handles.is_empty(), "at least one store handle is needed");
    let key = unique_key("concurrent");
    let mut tasks = JoinSet::new();
    for n in 0..ADDS {
        let store = Arc::clone(&handles[n % handles.len()]);
        let key = key.clone();
        tasks.spawn(async move { store.add_to_counter(&key, 1, Some(LIMIT)).await });
    }
    let mut granted = BTreeSet::new();
    let mut refused = 0;
    while let Some(joined) = tasks.join_next().await {
        match joined.expect("an add task panicked") {
            Ok(value) => assert!(granted.insert(value), "two adds both returned {value}"),
            Err(StoreError::LimitReached { current, limit }) => {
                assert_eq!((current, limit), (LIMIT, LIMIT), "a refusal happens only once the limit is reached");
                refused += 1;
            }
            Err(other) => panic!("an add failed instead of succeeding or reaching the limit: {other}"),
        }
    }
    assert_eq!(granted, (1..=LIMIT).collect(), "exactly {LIMIT} adds succeed, returning 1..={LIMIT}");
    assert_eq!(refused, ADDS - LIMIT as usize);
    assert_eq!(handles[0].counter(&key).await.unwrap(), LIMIT, "the counter ends at the limit");
}

/// Giving back reservations: a subtraction is atomic, and refused (writing nothing) when the
/// counter holds less than it would take off.
/// A rate-limit window's counter: the same answers as any counter (the store deletes it some
/// time after its expiry, which each backend's own tests show).
pub async fn expiring_counters_count_like_counters(store: Arc<dyn Store>) {
    let key = unique_key("window");
    let (first, later) = (NOW.plus_seconds(3_600), NOW.plus_seconds(7_200));
    assert_eq!(store.add_to_expiring_counter(&key, 2, Some(3), first).await.unwrap(), 2);
    let refused = store.add_to_expiring_counter(&key, 2, Some(3), later).await;
    assert!(matches!(refused, Err(StoreError::LimitReached { current: 2, limit: 3 })), "{refused:?}");
    assert_eq!(store.add_to_expiring_counter(&key, 1, Some(3), later).await.unwrap(), 3);
    assert_eq!(store.counter(&key).await.unwrap(), 3);
    assert!(store.subtract_from_counter(&key, 1).await.unwrap(), "a reservation can be given back");
    assert_eq!(store.add_to_counter(&key, 1, None).await.unwrap(), 3, "a plain add works on it too");
    assert_eq!(store.add_to_expiring_counter(&unique_key("window"), 1, None, first).await.unwrap(), 1, "no limit");
}

pub async fn counter_subtracts_without_going_below_zero(store: Arc<dyn Store>) {
    let key = unique_key("reserved");
    assert!(store.subtract_from_counter(&key, 0).await.unwrap(), "taking off nothing always succeeds");
    assert!(!store.subtract_from_counter(&key, 1).await.unwrap(), "a counter never written holds zero");
    assert_eq!(store.counter(&key).await.unwrap(), 0, "a refused subtraction writes nothing");
    store.add_to_counter(&key, 3, Some(3)).await.unwrap();
    assert!(store.subtract_from_counter(&key, 2).await.unwrap());
    assert_eq!(store.counter(&key).await.unwrap(), 1);
    assert!(!store.subtract_from_counter(&key, 2).await.unwrap(), "never below zero");
    assert_eq!(store.counter(&key).await.unwrap(), 1, "a refused subtraction changes nothing");
    assert!(store.subtract_from_counter(&key, 1).await.unwrap(), "reaching zero exactly is allowed");
    assert_eq!(store.counter(&key).await.unwrap(), 0);
    assert_eq!(store.add_to_counter(&key, 3, Some(3)).await.unwrap(), 3, "the limit is free again once given back");

    // 40 concurrent subtractions of 1 from 30: exactly 30 succeed and the counter ends at zero.
    store.add_to_counter(&key, 27, None).await.unwrap();
    let mut tasks = JoinSet::new();
    for _ in 0..40 {
        let (store, key) = (Arc::clone(&store), key.clone());
        tasks.spawn(async move { store.subtract_from_counter(&key, 1).await.unwrap() });
    }
    let succeeded = tasks.join_all().await.into_iter().filter(|done| *done).count();
    assert_eq!(succeeded, 30, "exactly as many subtractions succeed as the counter held");
    assert_eq!(store.counter(&key).await.unwrap(), 0);
}

// Single-use items.

pub async fn single_use_items_are_taken_once(store: Arc<dyn Store>) {
    let key = unique_key("code");
    let value = b"\x00binary\xffvalue".to_vec();
    let expires_at = NOW.plus_seconds(60);
    store.put_single_use(&key, &value, expires_at, NOW).await.expect("putting a new item");
    let second = store.put_single_use(&key, b"other", expires_at, NOW).await;
    assert!(
        matches!(second, Err(StoreError::Conflict(_))),
        "a second put while unexpired must conflict, got {second:?}"
    );

    assert_eq!(store.take_single_use(&key, NOW).await.unwrap(), Some(value), "the first take gets the original value");
    assert_eq!(store.take_single_use(&key, NOW).await.unwrap(), None, "a second take gets nothing");
    assert_eq!(store.take_single_use(&unique_key("code"), NOW).await.unwrap(), None, "an unknown key gets nothing");
    store.put_single_use(&key, b"again", expires_at, NOW).await.expect("a taken key can be put again");

    single_use_items_are_taken_once_across_handles(vec![store]).await;
}

/// Many concurrent takers of one item, spread over `handles`: exactly one gets it.
pub async fn single_use_items_are_taken_once_across_handles(handles: Vec<Arc<dyn Store>>) {
    const TAKERS: usize = 32;
    assert!(!handles.is_empty(), "at least one store handle is needed");
    let key = unique_key("race");
    handles[0].put_single_use(&key, b"prize", NOW.plus_seconds(60), NOW).await.unwrap();
    let mut tasks = JoinSet::new();
    for n in 0..TAKERS {
        let store = Arc::clone(&handles[n % handles.len()]);
        let key = key.clone();
        tasks.spawn(async move { store.take_single_use(&key, NOW).await });
    }
    let mut winners = 0;
    while let Some(joined) = tasks.join_next().await {
        if let Some(value) = joined.expect("a take task panicked").expect("a take failed") {
            assert_eq!(value, b"prize");
            winners += 1;
        }
    }
    assert_eq!(winners, 1, "exactly one of {TAKERS} concurrent takers gets the item");
}

/// An item is expired once `now >= expires_at`.
pub async fn expired_single_use_items_are_invisible_and_replaceable(store: Arc<dyn Store>) {
    let key = unique_key("nonce");
    let expires_at = NOW.plus_seconds(10);
    store.put_single_use(&key, b"first", expires_at, NOW).await.unwrap();
    let early = store.put_single_use(&key, b"early", NOW.plus_seconds(60), NOW.plus_seconds(9)).await;
    assert!(matches!(early, Err(StoreError::Conflict(_))), "an unexpired item cannot be replaced, got {early:?}");
    assert_eq!(store.take_single_use(&key, expires_at).await.unwrap(), None, "an item is expired at its expiry time");

    let other = unique_key("nonce");
    store.put_single_use(&other, b"old", expires_at, NOW).await.unwrap();
    let later = NOW.plus_seconds(20);
    store.put_single_use(&other, b"new", later.plus_seconds(60), later).await.expect("an expired item can be replaced");
    assert_eq!(store.take_single_use(&other, later).await.unwrap(), Some(b"new".to_vec()), "the replacement is taken");
    assert_eq!(store.take_single_use(&other, later).await.unwrap(), None);
}

// Items.

pub async fn items_put_get_replace_delete(store: Arc<dyn Store>) {
    let key = unique_key("item");
    assert_eq!(store.get_item(&key, NOW).await.unwrap(), None, "a fresh key holds nothing");
    store.put_item(&key, b"one", None, PutMode::CreateOnly, NOW).await.expect("creating a new item");
    assert_eq!(store.get_item(&key, NOW).await.unwrap().as_deref(), Some(&b"one"[..]));
    store.put_item(&key, b"two", Some(NOW.plus_seconds(60)), PutMode::Replace, NOW).await.expect("replacing");
    assert_eq!(store.get_item(&key, NOW).await.unwrap().as_deref(), Some(&b"two"[..]), "Replace overwrites");
    assert!(store.delete_item(&key).await.unwrap(), "deleting an existing item reports true");
    assert!(!store.delete_item(&key).await.unwrap(), "deleting a missing item reports false");
    assert_eq!(store.get_item(&key, NOW).await.unwrap(), None);
}

pub async fn create_only_items_conflict_while_live(store: Arc<dyn Store>) {
    let key = unique_key("item");
    store.put_item(&key, b"first", Some(NOW.plus_seconds(60)), PutMode::CreateOnly, NOW).await.unwrap();
    let second = store.put_item(&key, b"second", None, PutMode::CreateOnly, NOW).await;
    assert!(matches!(second, Err(StoreError::Conflict(_))), "CreateOnly over a live item must conflict, got {second:?}");
    assert_eq!(store.get_item(&key, NOW).await.unwrap().as_deref(), Some(&b"first"[..]), "a refused put changes nothing");
}

pub async fn expired_items_are_invisible_and_replaceable(store: Arc<dyn Store>) {
    let key = unique_key("item");
    let expires = NOW.plus_seconds(10);
    store.put_item(&key, b"old", Some(expires), PutMode::CreateOnly, NOW).await.unwrap();
    assert!(store.get_item(&key, NOW.plus_seconds(9)).await.unwrap().is_some(), "live just before expiry");
    assert_eq!(store.get_item(&key, expires).await.unwrap(), None, "an item is expired when now >= expires_at");
    assert!(!store.swap_item(&key, b"old", b"new", None, expires).await.unwrap(), "an expired item cannot be swapped");
    store.put_item(&key, b"new", None, PutMode::CreateOnly, expires).await.expect("CreateOnly replaces an expired item");
    assert_eq!(store.get_item(&key, expires.plus_seconds(1_000_000)).await.unwrap().as_deref(), Some(&b"new"[..]), "no expiry: lives forever");
}

pub async fn swap_item_is_compare_and_swap_under_concurrency(store: Arc<dyn Store>) {
    let key = unique_key("item");
    store.put_item(&key, b"v0", None, PutMode::CreateOnly, NOW).await.unwrap();
    assert!(!store.swap_item(&key, b"stale", b"x", None, NOW).await.unwrap(), "a swap from a stale value fails");
    assert!(!store.swap_item(&unique_key("item"), b"v0", b"x", None, NOW).await.unwrap(), "a swap of a missing item fails");
    let mut tasks = JoinSet::new();
    for i in 0..20 {
        let (store, key) = (store.clone(), key.clone());
        tasks.spawn(async move { store.swap_item(&key, b"v0", format!("v1-{i}").as_bytes(), None, NOW).await.unwrap() });
    }
    let winners = tasks.join_all().await.into_iter().filter(|won| *won).count();
    assert_eq!(winners, 1, "exactly one of 20 concurrent swaps from the same value may win");
    let value = store.get_item(&key, NOW).await.unwrap().unwrap();
    assert!(value.starts_with(b"v1-"), "the winner's value is stored");
}

// Plans and call records.

pub async fn customer_plan_changes(store: Arc<dyn Store>) {
    let ada = customer("ada@example.com", None);
    store.insert_customer(&ada).await.unwrap();
    let business = squaremcp_core::PlanName::parse("business").unwrap();
    assert!(store.set_customer_plan(&ada.id, &business).await.unwrap(), "an existing customer's plan changes");
    assert_eq!(store.customer(&ada.id).await.unwrap().map(|c| c.plan), Some(business.clone()));
    assert!(!store.set_customer_plan(&CustomerId::generate(), &business).await.unwrap(), "no customer, no change");
}

fn call_record(customer: &CustomerId, at: squaremcp_core::Timestamp, outcome: &str) -> squaremcp_core::CallRecord {
    squaremcp_core::CallRecord {
        id: squaremcp_core::CallRecord::new_id(at),
        customer_id: customer.clone(),
        at,
        tool: "telegram_send_message".into(),
        platform: Platform::Telegram,
        auth_method: "api_key".into(),
        client: Some("claude-code/2.1".into()),
        duration_ms: 12,
        // Varies, so that the equality checks below prove the count round-trips.
        upstream_requests: u32::try_from(at.unix() % 7).unwrap_or(0) + 1,
        outcome: outcome.into(),
        counted: outcome == "ok",
        arguments: serde_json::json!({"chat_id": 42, "text": "[redacted]"}),
        expires_at: at.plus_seconds(3_600),
        calls: 1,
    }
}

pub async fn call_records_by_customer_and_time(store: Arc<dyn Store>) {
    let (ada, grace) = (customer("ada@example.com", None), customer("grace@example.com", None));
    store.insert_customer(&ada).await.unwrap();
    store.insert_customer(&grace).await.unwrap();
    let records: Vec<_> = (0..5).map(|i| call_record(&ada.id, NOW.plus_seconds(i * 10), "ok")).collect();
    for record in &records {
        store.record_call(record, None).await.expect("recording a call");
    }
    store.record_call(&call_record(&grace.id, NOW, "ok"), None).await.unwrap();

    let all = store.call_records(&ada.id, NOW, NOW.plus_seconds(1_000), 100, NOW).await.unwrap();
    let mut newest_first = records.clone();
    newest_first.reverse();
    assert_eq!(all, newest_first, "a customer's records, newest first, exactly as written, and nobody else's");
    let window = store.call_records(&ada.id, NOW.plus_seconds(10), NOW.plus_seconds(30), 100, NOW).await.unwrap();
    assert_eq!(window.len(), 2, "from is inclusive, until exclusive");
    let limited = store.call_records(&ada.id, NOW, NOW.plus_seconds(1_000), 2, NOW).await.unwrap();
    assert_eq!(limited, newest_first[..2].to_vec(), "the limit keeps the newest");
    let later = NOW.plus_seconds(3_615);
    let live = store.call_records(&ada.id, NOW, NOW.plus_seconds(1_000), 100, later).await.unwrap();
    assert_eq!(live.len(), 3, "expired records are invisible (now >= expires_at)");
}

pub async fn recording_a_call_adjusts_its_counter_atomically(store: Arc<dyn Store>) {
    let ada = customer("ada@example.com", None);
    store.insert_customer(&ada).await.unwrap();
    let key = unique_key("usage");
    store.record_call(&call_record(&ada.id, NOW, "ok"), Some((&key, 1))).await.unwrap();
    store.record_call(&call_record(&ada.id, NOW, "ok"), Some((&key, 1))).await.unwrap();
    assert_eq!(store.counter(&key).await.unwrap(), 2);
    store.record_call(&call_record(&ada.id, NOW, "upstream_error"), Some((&key, -1))).await.unwrap();
    assert_eq!(store.counter(&key).await.unwrap(), 1, "a negative adjustment gives back");
    let fresh = unique_key("usage");
    store.record_call(&call_record(&ada.id, NOW, "upstream_error"), Some((&fresh, -1))).await.unwrap();
    assert_eq!(store.counter(&fresh).await.unwrap(), 0, "a counter never goes below zero");
    let mut tasks = JoinSet::new();
    for _ in 0..40 {
        let (store, key, id) = (store.clone(), key.clone(), ada.id.clone());
        tasks.spawn(async move { store.record_call(&call_record(&id, NOW, "ok"), Some((&key, 1))).await.unwrap() });
    }
    tasks.join_all().await;
    assert_eq!(store.counter(&key).await.unwrap(), 41, "no adjustment is lost under concurrency");
    assert_eq!(store.call_records(&ada.id, NOW, NOW.plus_seconds(1), 1_000, NOW).await.unwrap().len(), 44);
}
