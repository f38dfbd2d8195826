//! The monthly invoice run over a real store: which plan prices a month (plan history), and a
//! lease that holds for as long as the run works. Run on every backend, because both rest on
//! create-only puts, reads of live items and compare-and-swap.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use squaremcp_core::billing::history::{change_plan, recorded_plan};
use squaremcp_core::billing::run::invoice_key;
use squaremcp_core::billing::{Invoice, InvoiceRun, Month, PlanCatalog, RunError, usage_counter_key};
use squaremcp_core::{Clock, Customer, CustomerId, Email, MailError, Mailer, NoMailer, OutgoingEmail, PlanName, Store, Timestamp};

/// A clock the test moves by hand.
struct TestClock(AtomicI64);

impl TestClock {
    fn at(rfc3339: &str) -> Arc<Self> {
        Arc::new(Self(AtomicI64::new(instant(rfc3339).unix())))
    }
    fn set(&self, rfc3339: &str) {
        self.0.store(instant(rfc3339).unix(), Ordering::SeqCst);
    }
    fn advance(&self, seconds: i64) {
        self.0.fetch_add(seconds, Ordering::SeqCst);
    }
}

impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_unix(self.0.load(Ordering::SeqCst))
    }
}

fn instant(rfc3339: &str) -> Timestamp {
    Timestamp::parse_rfc3339(rfc3339).expect("test instants are valid")
}

/// Accepts every email. With a rival, each send takes `seconds_per_send` of clock time and then
/// has the rival try to start a run of its own: it must find the lease held.
#[derive(Default)]
struct SlowMailer {
    sent: Mutex<Vec<OutgoingEmail>>,
    rival: Option<(Arc<TestClock>, i64, Arc<InvoiceRun>, Month)>,
    rival_found_the_lease_held: Mutex<Vec<bool>>,
}

#[async_trait]
impl Mailer for SlowMailer {
    async fn send(&self, email: &OutgoingEmail) -> Result<(), MailError> {
        if let Some((clock, seconds_per_send, rival, month)) = &self.rival {
            clock.advance(*seconds_per_send);
            let attempt = rival.run(*month, &|| true, &|_| {}).await;
            self.rival_found_the_lease_held.lock().unwrap().push(matches!(attempt, Err(RunError::Busy { .. })));
        }
        self.sent.lock().unwrap().push(email.clone());
        Ok(())
    }
}

fn invoice_run(store: &Arc<dyn Store>, clock: &Arc<TestClock>, mailer: Arc<dyn Mailer>, plans: PlanCatalog) -> InvoiceRun {
    InvoiceRun {
        store: Arc::clone(store),
        mailer,
        plans: Arc::new(plans),
        clock: Arc::clone(clock) as Arc<dyn Clock>,
        from: "SquareMCP Billing <billing@example.com>".to_owned(),
        events: None,
    }
}

fn plan(name: &str) -> PlanName {
    PlanName::parse(name).expect("test plan names are valid")
}

async fn customer_since(store: &Arc<dyn Store>, email: &str, plan_name: &str, since: &str) -> Customer {
    let customer = Customer {
        id: CustomerId::generate(),
        email: Email::parse(email).expect("test emails are valid"),
        plan: plan(plan_name),
        password_hash: None,
        created_at: instant(since),
    };
    store.insert_customer(&customer).await.unwrap();
    customer
}

async fn stored_invoice(store: &Arc<dyn Store>, customer: &CustomerId, month: Month, now: Timestamp) -> Invoice {
    let bytes = store.get_item(&invoice_key(customer, month), now).await.unwrap().expect("the invoice is stored");
    serde_json::from_slice(&bytes).expect("a stored invoice parses")
}

/// 50,000 calls on pro, a switch to business on the 31st, the month closed: pro's price and
/// overage at the prices of that month, although the price list changed before the close.
pub async fn a_month_is_invoiced_with_the_plan_it_began_with(store: Arc<dyn Store>) {
    let october = Month::parse("2026-10").unwrap();
    let clock = TestClock::at("2026-10-31T12:00:00Z");
    let ada = customer_since(&store, "ada@example.com", "pro", "2026-10-01T00:00:00Z").await;
    store.add_to_counter(&usage_counter_key(&ada.id, october), 50_000, None).await.unwrap();

    let october_prices = PlanCatalog::builtin();
    assert!(change_plan(store.as_ref(), &october_prices, &ada, &plan("business"), clock.now()).await.unwrap());
    assert_eq!(store.customer(&ada.id).await.unwrap().map(|c| c.plan), Some(plan("business")), "the change applies at once");

    // A new price list before the close: pro now $25, business $120.
    let november_prices = PlanCatalog::from_toml(
        "[plans.pro]\nmonthly_calls = 10000\nprice_cents = 2500\noverage_cents = 2\n\n\
         [plans.business]\nmonthly_calls = 100000\nprice_cents = 12000\noverage_cents = 2\n",
    )
    .unwrap();
    clock.set("2026-11-01T06:00:00Z");
    let mailer = Arc::new(SlowMailer::default());
    let report = invoice_run(&store, &clock, mailer.clone(), november_prices).run(october, &|| true, &|_| {}).await.unwrap();
    assert_eq!((report.invoices_created, report.emails_sent, report.complete), (1, 1, true), "{report:?}");

    let invoice = stored_invoice(&store, &ada.id, october, clock.now()).await;
    assert_eq!(invoice.plan, "pro", "the plan of the month, not the plan of the day: {invoice:?}");
    assert_eq!(invoice.calls, 50_000);
    assert_eq!(invoice.lines[0].amount_cents, 1_900, "October's pro price: {invoice:?}");
    assert_eq!((invoice.lines[1].quantity, invoice.lines[1].unit_cents), (40_000, 1), "October's overage: {invoice:?}");
    assert_eq!(invoice.total_cents, 1_900 + 40_000);
    assert!(mailer.sent.lock().unwrap()[0].text.contains("Total: $419.00 USD"));

    let november = recorded_plan(store.as_ref(), &ada.id, october.next(), clock.now()).await.unwrap().expect("November recorded");
    assert_eq!((november.name.as_str(), november.price_cents), ("business", 12_000), "the plan and prices November began with");
}

/// A customer from before plan history: invoiced on the current plan, which is then recorded,
/// so that a plan change after the close cannot change what a later run computes.
pub async fn a_month_without_plan_history_uses_the_current_plan_and_records_it(store: Arc<dyn Store>) {
    let october = Month::parse("2026-10").unwrap();
    let clock = TestClock::at("2026-11-01T06:00:00Z");
    let grace = customer_since(&store, "grace@example.com", "business", "2026-09-10T00:00:00Z").await;
    store.add_to_counter(&usage_counter_key(&grace.id, october), 5, None).await.unwrap();
    assert_eq!(recorded_plan(store.as_ref(), &grace.id, october, clock.now()).await.unwrap(), None);

    let run = invoice_run(&store, &clock, Arc::new(SlowMailer::default()), PlanCatalog::builtin());
    run.run(october, &|| true, &|_| {}).await.unwrap();
    let invoice = stored_invoice(&store, &grace.id, october, clock.now()).await;
    assert_eq!((invoice.plan.as_str(), invoice.total_cents), ("business", 9_900));
    let recorded = recorded_plan(store.as_ref(), &grace.id, october, clock.now()).await.unwrap().expect("October is recorded");
    assert_eq!(recorded.name.as_str(), "business");

    // Moved to free on the 1st, after the close, October stays business for the record.
    assert!(change_plan(store.as_ref(), &PlanCatalog::builtin(), &grace, &plan("free"), clock.now()).await.unwrap());
    let recorded = recorded_plan(store.as_ref(), &grace.id, october, clock.now()).await.unwrap().expect("still recorded");
    assert_eq!(recorded.name.as_str(), "business", "the first record of a month wins");
    let november = recorded_plan(store.as_ref(), &grace.id, october.next(), clock.now()).await.unwrap().expect("November");
    assert_eq!(november.name.as_str(), "business", "November began on business");
}

/// Each email takes 200 s of a 300 s lease: renewed per page, the lease would lapse during the
/// second customer and a second run could start; renewed per customer, it never lapses.
pub async fn the_invoice_lease_is_renewed_after_every_customer(store: Arc<dyn Store>) {
    let october = Month::parse("2026-10").unwrap();
    let clock = TestClock::at("2026-11-01T06:00:00Z");
    for i in 0..3 {
        customer_since(&store, &format!("slow{i}@example.com"), "pro", "2026-10-01T00:00:00Z").await;
    }
    let seconds_per_send = squaremcp_core::billing::run::LEASE_SECONDS * 2 / 3;
    let rival = Arc::new(invoice_run(&store, &clock, Arc::new(NoMailer), PlanCatalog::builtin()));
    let mailer = Arc::new(SlowMailer { rival: Some((Arc::clone(&clock), seconds_per_send, rival, october)), ..SlowMailer::default() });
    let report = invoice_run(&store, &clock, mailer.clone(), PlanCatalog::builtin()).run(october, &|| true, &|_| {}).await;
    let held = mailer.rival_found_the_lease_held.lock().unwrap().clone();
    assert_eq!(held, [true, true, true], "a rival run started while this one worked (report: {report:?})");
    let report = report.expect("the run keeps its lease to the end");
    assert_eq!((report.emails_sent, report.complete), (3, true), "{report:?}");
    assert_eq!(mailer.sent.lock().unwrap().len(), 3);
}
