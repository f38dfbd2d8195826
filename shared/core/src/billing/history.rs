//! Plan history: the plan (with its price and limits as they were) that governs a customer's
//! month, so that an invoice never prices a month with a plan or a price list of a later day.
//!
//! The rule: a month is invoiced with the plan the customer was on when the month began (or when
//! they became a customer during it). A plan change applies to calls at once and to billing
//! from the next month. One record per customer and month, written create-only, so the first one
//! written is the one that counts:
//! - just before a plan change, for the current and the previous month (which may not be invoiced
//!   yet), with the plan being left, because that plan was in force when those months began;
//! - by the invoice run closing a month, for the month that has just begun, with the current plan;
//! - at the latest when the month is invoiced, with the current plan (customers from before plan
//!   history existed).

use serde::{Deserialize, Serialize};

use super::{Month, Plan, PlanCatalog};
use crate::{Customer, CustomerId, PlanName, PutMode, Store, StoreError, Timestamp};

/// How long a record outlives its month. The invoice keeps what it billed, so the record is only
/// needed until the month is invoiced; a year leaves room for a late or repeated run.
const KEEP_AFTER_MONTH_SECONDS: i64 = 400 * 86_400;

pub fn month_plan_key(customer: &CustomerId, month: Month) -> String {
    format!("plan#{customer}#{month}")
}

/// The stored form: a copy of the plan, not its name, so that a later price list changes nothing.
#[derive(Serialize, Deserialize)]
struct MonthPlanRecord {
    plan: PlanName,
    monthly_calls: u64,
    price_cents: u64,
    #[serde(default)]
    overage_cents: Option<u64>,
    recorded_at: Timestamp,
}

impl MonthPlanRecord {
    fn of(plan: &Plan, now: Timestamp) -> Self {
        Self {
            plan: plan.name.clone(),
            monthly_calls: plan.monthly_calls,
            price_cents: plan.price_cents,
            overage_cents: plan.overage_cents,
            recorded_at: now,
        }
    }

    fn into_plan(self) -> Plan {
        Plan { name: self.plan, monthly_calls: self.monthly_calls, price_cents: self.price_cents, overage_cents: self.overage_cents }
    }
}

/// The plan recorded for `month`, if any.
pub async fn recorded_plan(store: &dyn Store, customer: &CustomerId, month: Month, now: Timestamp) -> Result<Option<Plan>, StoreError> {
    let key = month_plan_key(customer, month);
    let Some(bytes) = store.get_item(&key, now).await? else { return Ok(None) };
    let record: MonthPlanRecord = serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt(format!("{key}: {e}")))?;
    Ok(Some(record.into_plan()))
}

/// Records `plan` for `month` unless a plan is recorded for it already; `true` if this one was.
pub async fn record_plan(store: &dyn Store, customer: &CustomerId, month: Month, plan: &Plan, now: Timestamp) -> Result<bool, StoreError> {
    let value = serde_json::to_vec(&MonthPlanRecord::of(plan, now)).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let expires = month.end().plus_seconds(KEEP_AFTER_MONTH_SECONDS);
    match store.put_item(&month_plan_key(customer, month), &value, Some(expires), PutMode::CreateOnly, now).await {
        Ok(()) => Ok(true),
        Err(StoreError::Conflict(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The plan that governs `month`: the recorded one, or else `current`, which is recorded for it
/// (so that a later plan change or price list leaves the month alone). `None`: nothing is
/// recorded and the customer's current plan is not offered any more.
pub async fn plan_of_month(
    store: &dyn Store,
    customer: &CustomerId,
    month: Month,
    current: Option<&Plan>,
    now: Timestamp,
) -> Result<Option<Plan>, StoreError> {
    if let Some(recorded) = recorded_plan(store, customer, month, now).await? {
        return Ok(Some(recorded));
    }
    let Some(current) = current else { return Ok(None) };
    if record_plan(store, customer, month, current, now).await? {
        return Ok(Some(current.clone()));
    }
    // Someone recorded the month between our read and our write: theirs came first.
    Ok(Some(recorded_plan(store, customer, month, now).await?.unwrap_or_else(|| current.clone())))
}

/// Moves `customer` to plan `to`, having first recorded the plan being left for this month and
/// the previous one. `false`: no such customer.
pub async fn change_plan(
    store: &dyn Store,
    plans: &PlanCatalog,
    customer: &Customer,
    to: &PlanName,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let this_month = Month::of(now);
    match plans.get(&customer.plan) {
        Some(leaving) => {
            record_plan(store, &customer.id, this_month, leaving, now).await?;
            // The previous month may still be waiting for its invoice run.
            if customer.created_at < this_month.start() {
                record_plan(store, &customer.id, this_month.previous(), leaving, now).await?;
            }
        }
        None => tracing::warn!(
            customer = customer.id.as_str(),
            plan = customer.plan.as_str(),
            "the plan being left is not offered any more; its months cannot be recorded"
        ),
    }
    store.set_customer_plan(&customer.id, to).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_to_the_same_plan() {
        let catalog = PlanCatalog::builtin();
        let pro = catalog.get(&PlanName::parse("pro").expect("name")).expect("pro");
        let stored = serde_json::to_vec(&MonthPlanRecord::of(pro, Timestamp::from_unix(7))).expect("serialises");
        let back: MonthPlanRecord = serde_json::from_slice(&stored).expect("parses");
        assert_eq!(back.recorded_at, Timestamp::from_unix(7));
        assert_eq!(&back.into_plan(), pro);
        let free = catalog.get(&PlanName::parse("free").expect("name")).expect("free");
        let stored = serde_json::to_vec(&MonthPlanRecord::of(free, Timestamp::from_unix(7))).expect("serialises");
        assert_eq!(&serde_json::from_slice::<MonthPlanRecord>(&stored).expect("parses").into_plan(), free, "no overage stays none");
    }

    #[test]
    fn keys_name_the_customer_and_the_month() {
        let id = CustomerId::parse("cus_0123456789abcdef01234567").expect("id");
        assert_eq!(month_plan_key(&id, Month::parse("2026-10").expect("month")), "plan#cus_0123456789abcdef01234567#2026-10");
    }
}
