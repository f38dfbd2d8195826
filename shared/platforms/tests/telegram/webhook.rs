//! Webhook mode on a real (SQLite) store: switching on and off against the mock, the update
//! buffer's limits (newest 100, 24 hours), redeliveries and concurrent deliveries buffered once,
//! events handed over until the hand-over succeeds, and a replaced credential routing nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};

use async_trait::async_trait;
use serde_json::{Value, json};
use squaremcp_core::events::{EventSink, PublishError};
use squaremcp_core::routing::RouteOwner;
use squaremcp_core::{
    AccountName, Clock, CustomerId, Gateway, Platform, Registry, Secret, Store, Timestamp,
};
use squaremcp_platform_mocks::Mock;
use squaremcp_platform_mocks::telegram::Telegram;
use squaremcp_platforms::kit::PlatformContext;
use squaremcp_platforms::telegram::webhook::{
    self, Accepted, InboundError, SwitchError, SwitchOn, TelegramWebhook,
};
use squaremcp_platforms::{PlatformConfig, http_client, modules};

use super::TOKEN;

const BOT_ID: &str = "7012345678";

/// A clock the test moves.
struct ManualClock(AtomicI64);

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_unix(self.0.load(Ordering::SeqCst))
    }
}

/// Counts hand-overs; fails the first `fail_first` of them.
#[derive(Default)]
struct Sink {
    fail_first: usize,
    calls: AtomicUsize,
    published: std::sync::Mutex<Vec<(String, String)>>,
}

#[async_trait]
impl EventSink for Sink {
    async fn publish(
        &self,
        _: &CustomerId,
        event_type: &str,
        key: &str,
        _: Value,
    ) -> Result<usize, PublishError> {
        if self.calls.fetch_add(1, Ordering::SeqCst) < self.fail_first {
            return Err(PublishError("queue down".to_owned()));
        }
        self.published
            .lock()
            .unwrap()
            .push((event_type.to_owned(), key.to_owned()));
        Ok(1)
    }
}

struct Setup {
    gateway: Gateway,
    store: Arc<dyn Store>,
    clock: Arc<ManualClock>,
    owner: RouteOwner,
    mock: Mock<Telegram>,
    secret: String,
}

async fn setup() -> Setup {
    let dir = std::env::temp_dir().join(format!(
        "squaremcp-tg-hook-{}",
        squaremcp_core::random::hex_id::<6>()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let store: Arc<dyn Store> =
        Arc::new(squaremcp_embedded::SqliteStore::open_temporary().unwrap());
    let keyring = Arc::new(
        squaremcp_embedded::KeyFileKeyring::open_or_create(&dir.join("keyring.json")).unwrap(),
    );
    let clock = Arc::new(ManualClock(AtomicI64::new(1_800_000_000)));
    let registry = Arc::new(Registry::new(modules(&PlatformConfig::new(http_client()))));
    let gateway = Gateway::new(store.clone(), keyring, clock.clone(), registry, None);
    let customer = gateway
        .create_customer("ada@example.com", "free", None)
        .await
        .unwrap()
        .id;
    gateway
        .set_credential(
            &customer,
            Platform::Telegram,
            AccountName::default_account(),
            &json!({"bot_token": TOKEN}),
        )
        .await
        .unwrap();
    let owner = RouteOwner {
        customer_id: customer,
        account: AccountName::default_account(),
    };
    let mock = Mock::start(Telegram::accepting(&[TOKEN])).await;
    let context = PlatformContext::new(http_client(), mock.base_url().to_owned());
    let on = SwitchOn {
        context: &context,
        store: store.as_ref(),
        clock: clock.as_ref(),
        owner: &owner,
        public_url: "https://gw.example",
        allowed_updates: &[],
    };
    webhook::switch_on(on, &Secret::new(json!({"bot_token": TOKEN})))
        .await
        .expect("switched on");
    let secret = mock.platform().webhook(TOKEN).unwrap()["secret_token"]
        .as_str()
        .unwrap()
        .to_owned();
    Setup {
        gateway,
        store,
        clock,
        owner,
        mock,
        secret,
    }
}

fn update(id: i64) -> Vec<u8> {
    json!({"update_id": id, "message": {"message_id": id, "date": 1, "chat": {"id": 1, "type": "private"}, "text": "x"}}).to_string().into_bytes()
}

async fn buffered(setup: &Setup, offset: Option<i64>) -> Vec<i64> {
    let updates = webhook::buffered_updates(
        setup.store.as_ref(),
        setup.clock.as_ref(),
        BOT_ID,
        offset,
        100,
    )
    .await
    .unwrap()
    .expect("webhook mode");
    updates
        .iter()
        .map(|u| u["update_id"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn the_buffer_keeps_the_newest_100_updates_for_24_hours() {
    let setup = setup().await;
    let hook = TelegramWebhook::new(setup.store.clone(), setup.clock.clone());
    for id in 0..105 {
        assert_eq!(
            hook.deliver(BOT_ID, Some(&setup.secret), &update(id))
                .await
                .unwrap(),
            Accepted::Buffered
        );
    }
    assert_eq!(
        buffered(&setup, None).await,
        (5..105).collect::<Vec<_>>(),
        "the oldest five were dropped"
    );
    assert_eq!(buffered(&setup, Some(-2)).await, [103, 104]);
    // A day later only what arrived since is left.
    setup.clock.0.fetch_add(86_401, Ordering::SeqCst);
    assert_eq!(
        hook.deliver(BOT_ID, Some(&setup.secret), &update(200))
            .await
            .unwrap(),
        Accepted::Buffered
    );
    assert_eq!(buffered(&setup, None).await, [200]);
    // A confirmed update is not buffered again when Telegram redelivers it.
    assert_eq!(buffered(&setup, Some(201)).await, Vec::<i64>::new());
    assert_eq!(
        hook.deliver(BOT_ID, Some(&setup.secret), &update(200))
            .await
            .unwrap(),
        Accepted::Duplicate
    );
    assert_eq!(buffered(&setup, None).await, Vec::<i64>::new());
}

#[tokio::test]
async fn concurrent_redeliveries_are_buffered_once_and_secrets_are_checked_first() {
    let setup = setup().await;
    let hook = Arc::new(TelegramWebhook::new(
        setup.store.clone(),
        setup.clock.clone(),
    ));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (hook, secret) = (hook.clone(), setup.secret.clone());
            tokio::spawn(async move {
                hook.deliver(BOT_ID, Some(&secret), &update(7))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| **o == Accepted::Buffered)
            .count(),
        1,
        "{outcomes:?}"
    );
    assert!(matches!(
        hook.deliver(BOT_ID, None, &update(8)).await,
        Err(InboundError::MissingSecret)
    ));
    assert!(matches!(
        hook.deliver(BOT_ID, Some("wrong"), b"not even json").await,
        Err(InboundError::WrongSecret)
    ));
    assert!(matches!(
        hook.deliver("999", Some(&setup.secret), &update(8)).await,
        Err(InboundError::WrongSecret)
    ));
    assert!(matches!(
        hook.deliver(BOT_ID, Some(&setup.secret), br#"{"update_id": -1}"#)
            .await,
        Err(InboundError::Malformed(_))
    ));
    assert_eq!(
        buffered(&setup, None).await,
        [7],
        "nothing refused was stored"
    );
}

#[tokio::test]
async fn an_event_is_handed_over_until_the_hand_over_succeeds_then_never_again() {
    let setup = setup().await;
    let sink = Arc::new(Sink {
        fail_first: 1,
        ..Sink::default()
    });
    let hook =
        TelegramWebhook::new(setup.store.clone(), setup.clock.clone()).with_events(sink.clone());
    // The queue is down: the update is buffered but the request fails, so Telegram retries.
    assert!(matches!(
        hook.deliver(BOT_ID, Some(&setup.secret), &update(1)).await,
        Err(InboundError::Store(_))
    ));
    assert_eq!(
        hook.deliver(BOT_ID, Some(&setup.secret), &update(1))
            .await
            .unwrap(),
        Accepted::Duplicate
    );
    assert_eq!(
        hook.deliver(BOT_ID, Some(&setup.secret), &update(1))
            .await
            .unwrap(),
        Accepted::Duplicate
    );
    assert_eq!(
        *sink.published.lock().unwrap(),
        [("telegram.update".to_owned(), format!("{BOT_ID}:1"))]
    );
    assert_eq!(buffered(&setup, None).await, [1]);
}

#[tokio::test]
async fn a_replaced_credential_routes_nothing_and_switching_off_deletes_the_webhook() {
    let setup = setup().await;
    let hook = TelegramWebhook::new(setup.store.clone(), setup.clock.clone());
    setup.clock.0.fetch_add(10, Ordering::SeqCst);
    let other = json!({"bot_token": "7012345678:AAFq3xZ-9kLmNoPqRsTuVwXyZ_replaced_token"});
    setup
        .gateway
        .set_credential(
            &setup.owner.customer_id,
            Platform::Telegram,
            AccountName::default_account(),
            &other,
        )
        .await
        .unwrap();
    assert_eq!(
        hook.deliver(BOT_ID, Some(&setup.secret), &update(1))
            .await
            .unwrap(),
        Accepted::Unrouted
    );

    let context = PlatformContext::new(http_client(), setup.mock.base_url().to_owned());
    let credential = Secret::new(json!({"bot_token": TOKEN}));
    let off = webhook::switch_off(
        &context,
        setup.store.as_ref(),
        setup.clock.as_ref(),
        &setup.owner,
        &credential,
    )
    .await
    .unwrap();
    assert!(off);
    assert_eq!(setup.mock.platform().webhook(TOKEN), None);
    assert!(
        webhook::hook(setup.store.as_ref(), BOT_ID, setup.clock.now())
            .await
            .unwrap()
            .is_none()
    );
    assert!(matches!(
        hook.deliver(BOT_ID, Some(&setup.secret), &update(2)).await,
        Err(InboundError::WrongSecret)
    ));

    // Telegram refusing the URL leaves no hook record behind.
    let on = SwitchOn {
        context: &context,
        store: setup.store.as_ref(),
        clock: setup.clock.as_ref(),
        owner: &setup.owner,
        public_url: "http://gw.example",
        allowed_updates: &[],
    };
    let refused = webhook::switch_on(on, &credential)
        .await
        .expect_err("HTTPS only");
    assert!(
        matches!(&refused, SwitchError::Telegram(m) if m.contains("HTTPS URL")),
        "{refused}"
    );
    assert!(!refused.to_string().contains(TOKEN));
    assert!(
        webhook::hook(setup.store.as_ref(), BOT_ID, setup.clock.now())
            .await
            .unwrap()
            .is_none()
    );
}
