//! The monthly invoice run. Safe to run twice, to run twice at once, and to kill at any point:
//! - a lease item keeps two runs from working at once;
//! - each invoice is created with a create-only put, so a customer-month has one invoice;
//! - an invoice is marked sent (compare-and-swap) only after the SMTP server accepted it, and a
//!   failed send stays pending for the next run;
//! - a checkpoint lets a run that stopped for time resume where it left off;
//! - the lease is renewed after every customer, so slow email sends cannot outlast it;
//! - a month is priced with the plan recorded for it (`history.rs`), not today's plan.

use std::sync::Arc;

use super::{Invoice, Month, Plan, PlanCatalog, history, usage_counter_key};
use crate::ports::{Mailer, OutgoingEmail, PutMode};
use crate::{Clock, Customer, Store, StoreError, Timestamp, random};

/// How long a lease lasts without renewal; a crashed run blocks others at most this long.
pub const LEASE_SECONDS: i64 = 300;
const PAGE: usize = 50;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0} is not over yet; only finished months are invoiced")]
    MonthNotFinished(Month),
    #[error("another invoice run for {month} is in progress (its lease ends at {until}); nothing was done")]
    Busy { month: Month, until: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct RunReport {
    pub customers_seen: u64,
    pub invoices_created: u64,
    pub emails_sent: u64,
    pub already_sent: u64,
    pub send_failures: u64,
    /// True when every invoice of the month has been sent.
    pub complete: bool,
    /// True when the run stopped early (out of time) and the next one resumes.
    pub stopped_early: bool,
}

pub struct InvoiceRun {
    pub store: Arc<dyn Store>,
    pub mailer: Arc<dyn Mailer>,
    pub plans: Arc<PlanCatalog>,
    pub clock: Arc<dyn Clock>,
    pub from: String,
    /// Where `invoice.created` goes (outbound webhooks); `None`: no delivery is configured.
    pub events: Option<Arc<dyn crate::events::EventSink>>,
}

fn lease_key(month: Month) -> String {
    format!("invoices#{month}#lease")
}
fn checkpoint_key(month: Month) -> String {
    format!("invoices#{month}#checkpoint")
}
fn done_key(month: Month) -> String {
    format!("invoices#{month}#done")
}
pub fn invoice_key(customer: &crate::CustomerId, month: Month) -> String {
    format!("invoice#{customer}#{month}")
}

impl InvoiceRun {
    /// Runs until every customer was seen or `keep_going` says stop (checked between customers).
    /// `progress` is told of each customer handled.
    pub async fn run(
        &self,
        month: Month,
        keep_going: &(dyn Fn() -> bool + Send + Sync),
        progress: &(dyn Fn(&RunReport) + Send + Sync),
    ) -> Result<RunReport, RunError> {
        let now = self.clock.now();
        if month.end() > now {
            return Err(RunError::MonthNotFinished(month));
        }
        if self.store.get_item(&done_key(month), now).await?.is_some() {
            return Ok(RunReport { complete: true, ..RunReport::default() });
        }
        let owner = random::hex_id::<8>();
        let lease = Lease::acquire(self.store.as_ref(), month, &owner, now).await?;
        let result = self.work(month, &lease, keep_going, progress).await;
        lease.release(self.store.as_ref()).await;
        result
    }

    async fn work(
        &self,
        month: Month,
        lease: &Lease,
        keep_going: &(dyn Fn() -> bool + Send + Sync),
        progress: &(dyn Fn(&RunReport) + Send + Sync),
    ) -> Result<RunReport, RunError> {
        let mut report = RunReport::default();
        let checkpoint = self.store.get_item(&checkpoint_key(month), self.clock.now()).await?;
        let mut after = checkpoint.and_then(|c| String::from_utf8(c).ok());
        loop {
            let page = self.store.list_customers(after.as_deref(), PAGE).await?;
            for customer in &page.items {
                if !keep_going() {
                    report.stopped_early = true;
                    return Ok(report);
                }
                self.invoice_customer(customer, month, &mut report).await?;
                report.customers_seen += 1;
                let id = customer.id.as_str();
                self.store.put_item(&checkpoint_key(month), id.as_bytes(), None, PutMode::Replace, self.clock.now()).await?;
                // Per customer, not per page: one slow SMTP exchange after another must not let
                // the lease lapse while this run still works, or a second run would start.
                lease.renew(self.store.as_ref(), self.clock.now()).await?;
                progress(&report);
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        // A full pass: start the next one from the beginning, so failed sends are retried.
        self.store.delete_item(&checkpoint_key(month)).await?;
        if report.send_failures == 0 {
            let now = self.clock.now();
            match self.store.put_item(&done_key(month), now.unix().to_string().as_bytes(), None, PutMode::CreateOnly, now).await {
                Ok(()) | Err(StoreError::Conflict(_)) => {}
                Err(e) => return Err(e.into()),
            }
            report.complete = true;
        }
        Ok(report)
    }

    async fn invoice_customer(&self, customer: &Customer, month: Month, report: &mut RunReport) -> Result<(), RunError> {
        let current = self.plans.get(&customer.plan);
        self.record_plan_of_new_month(customer, month, current).await?;
        if customer.created_at >= month.end() {
            return Ok(()); // not a customer yet in that month
        }
        let Some(plan) = history::plan_of_month(self.store.as_ref(), &customer.id, month, current, self.clock.now()).await? else {
            tracing::error!(customer = customer.id.as_str(), plan = customer.plan.as_str(), "not invoiced: unknown plan");
            report.send_failures += 1;
            return Ok(());
        };
        let calls = self.store.counter(&usage_counter_key(&customer.id, month)).await?;
        let now = self.clock.now();
        let Some(fresh) = Invoice::compute(customer, &plan, month, calls, now) else { return Ok(()) };
        let key = invoice_key(&customer.id, month);
        let stored = serialize(&fresh)?;
        let (invoice, stored) = match self.store.put_item(&key, &stored, None, PutMode::CreateOnly, now).await {
            Ok(()) => {
                report.invoices_created += 1;
                (fresh, stored)
            }
            // Created by an earlier run: that one is the invoice, whatever usage says now.
            Err(StoreError::Conflict(_)) => {
                let existing = self.store.get_item(&key, now).await?.ok_or_else(|| StoreError::Corrupt(format!("{key} vanished")))?;
                let invoice: Invoice = serde_json::from_slice(&existing).map_err(|e| StoreError::Corrupt(format!("{key}: {e}")))?;
                (invoice, existing)
            }
            Err(e) => return Err(e.into()),
        };
        if invoice.sent_at.is_some() {
            report.already_sent += 1;
            return Ok(());
        }
        // Until the email is out, every run publishes it again under the invoice number: a run
        // that stopped between creating and publishing loses no event, and receivers see one id.
        if let Some(events) = &self.events {
            let data = serde_json::json!({
                "number": invoice.number,
                "month": invoice.month.to_string(),
                "plan": invoice.plan,
                "calls": invoice.calls,
                "lines": invoice.lines,
                "total_cents": invoice.total_cents,
                "currency": invoice.currency,
                "created_at": invoice.created_at.to_rfc3339(),
            });
            if let Err(e) = events.publish(&customer.id, "invoice.created", &invoice.number, data).await {
                tracing::warn!(customer = customer.id.as_str(), invoice = invoice.number, error = %e, "invoice.created not queued");
            }
        }
        let email = OutgoingEmail {
            to: invoice.email.clone(),
            subject: invoice.subject(),
            text: invoice.text(),
            html: invoice.html(),
            message_id: format!("<{}@squaremcp.invoice>", invoice.number),
        };
        match self.mailer.send(&email).await {
            Ok(()) => {
                let mut sent = invoice;
                sent.sent_at = Some(self.clock.now());
                if self.store.swap_item(&key, &stored, &serialize(&sent)?, None, self.clock.now()).await? {
                    report.emails_sent += 1;
                }
            }
            Err(e) => {
                tracing::warn!(customer = customer.id.as_str(), invoice = invoice.number, error = %e, "invoice email not sent; the next run retries");
                report.send_failures += 1;
            }
        }
        Ok(())
    }
}

impl InvoiceRun {
    /// Closing a month happens as the next one begins: the plan each customer begins it with is
    /// recorded now, so that its invoice keeps that plan and today's prices whatever comes later.
    /// Only for the month in progress; a late run for an older month leaves history alone.
    async fn record_plan_of_new_month(&self, customer: &Customer, closed: Month, current: Option<&Plan>) -> Result<(), RunError> {
        let now = self.clock.now();
        let (Some(current), true) = (current, Month::of(now) == closed.next()) else { return Ok(()) };
        history::record_plan(self.store.as_ref(), &customer.id, closed.next(), current, now).await?;
        Ok(())
    }
}

fn serialize(invoice: &Invoice) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(invoice).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// A lease is an item holding its owner and expiry; only an expired lease can be taken over.
struct Lease {
    month: Month,
    value: std::sync::Mutex<Vec<u8>>,
    owner: String,
}

impl Lease {
    async fn acquire(store: &dyn Store, month: Month, owner: &str, now: Timestamp) -> Result<Self, RunError> {
        let until = now.plus_seconds(LEASE_SECONDS);
        let value = format!("{owner}@{}", until.unix()).into_bytes();
        match store.put_item(&lease_key(month), &value, Some(until), PutMode::CreateOnly, now).await {
            Ok(()) => Ok(Self { month, value: std::sync::Mutex::new(value), owner: owner.to_owned() }),
            Err(StoreError::Conflict(_)) => {
                let held = store.get_item(&lease_key(month), now).await?.unwrap_or_default();
                let until = String::from_utf8_lossy(&held)
                    .split_once('@')
                    .and_then(|(_, t)| t.parse().ok())
                    .map_or_else(|| "soon".to_owned(), |t| Timestamp::from_unix(t).to_rfc3339());
                Err(RunError::Busy { month, until })
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn renew(&self, store: &dyn Store, now: Timestamp) -> Result<(), RunError> {
        let until = now.plus_seconds(LEASE_SECONDS);
        let renewed = format!("{}@{}", self.owner, until.unix()).into_bytes();
        let current = self.value.lock().map(|v| v.clone()).unwrap_or_default();
        if store.swap_item(&lease_key(self.month), &current, &renewed, Some(until), now).await? {
            if let Ok(mut value) = self.value.lock() {
                *value = renewed;
            }
            Ok(())
        } else {
            Err(RunError::Busy { month: self.month, until: "(the lease was lost)".to_owned() })
        }
    }

    async fn release(&self, store: &dyn Store) {
        let current = self.value.lock().map(|v| v.clone()).unwrap_or_default();
        // Only our own lease: if it was lost and taken over, the other run's stays.
        if let Ok(Some(held)) = store.get_item(&lease_key(self.month), Timestamp::from_unix(0)).await
            && held == current
        {
            let _ = store.delete_item(&lease_key(self.month)).await;
        }
    }
}
