//! `squaremcp usage top`: the operator's view of a month: the customers with the most calls
//! and the most used tools, from what every store already keeps (each customer's usage counter
//! and call log), so it reads the same from SQLite and DynamoDB. One counter read and one
//! call-log query per customer: an operator's occasional command, not a dashboard (the metrics
//! are for that).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::Serialize;
use serde_json::json;
use squaremcp_core::billing::{self, Month};
use squaremcp_core::{CallRecord, Customer, Gateway};

use crate::admin::CliError;
use crate::output::Printer;

/// The most call records read per customer and month; a customer beyond it is marked, and
/// their counted calls (from the usage counter) stay exact.
const RECORDS_PER_CUSTOMER: usize = 100_000;

#[derive(Debug, PartialEq, Serialize)]
pub struct CustomerUsage {
    pub id: String,
    pub email: String,
    pub plan: String,
    /// Calls counted against the plan (the usage counter: what the invoice bills).
    pub counted: u64,
    /// Every recorded call, failed and refused ones included.
    pub calls: u64,
    pub failed: u64,
    pub upstream_requests: u64,
    /// The call log held more than [`RECORDS_PER_CUSTOMER`] records: `calls` is a lower bound.
    pub truncated: bool,
}

#[derive(Debug, PartialEq, Serialize)]
pub struct ToolUsage {
    pub tool: String,
    pub platform: String,
    pub calls: u64,
    pub failed: u64,
    /// How many customers called it.
    pub customers: usize,
    pub upstream_requests: u64,
}

/// One customer's month: their record, usage counter and call log.
pub struct CustomerMonth {
    pub customer: Customer,
    pub counted: u64,
    pub records: Vec<CallRecord>,
}

/// Ranks customers by counted calls (then all calls), tools by calls; ties by name so that the
/// order is stable. Customers without a call this month are left out.
pub fn rank(months: &[CustomerMonth]) -> (Vec<CustomerUsage>, Vec<ToolUsage>) {
    let mut customers = Vec::new();
    let mut tools: BTreeMap<&str, (ToolUsage, BTreeSet<&str>)> = BTreeMap::new();
    for month in months {
        // A record may stand for several refused or invalid calls (`calls`).
        let failed = month.records.iter().filter(|r| r.outcome != "ok").map(|r| u64::from(r.calls)).sum();
        let usage = CustomerUsage {
            id: month.customer.id.as_str().to_owned(),
            email: month.customer.email.as_str().to_owned(),
            plan: month.customer.plan.as_str().to_owned(),
            counted: month.counted,
            calls: month.records.iter().map(|r| u64::from(r.calls)).sum(),
            failed,
            upstream_requests: month.records.iter().map(|r| u64::from(r.upstream_requests)).sum(),
            truncated: month.records.len() >= RECORDS_PER_CUSTOMER,
        };
        if usage.calls == 0 && usage.counted == 0 {
            continue;
        }
        customers.push(usage);
        for record in &month.records {
            let (tool, callers) = tools.entry(record.tool.as_str()).or_insert_with(|| {
                let usage = ToolUsage {
                    tool: record.tool.clone(),
                    platform: record.platform.as_str().to_owned(),
                    calls: 0,
                    failed: 0,
                    customers: 0,
                    upstream_requests: 0,
                };
                (usage, BTreeSet::new())
            });
            tool.calls += u64::from(record.calls);
            if record.outcome != "ok" {
                tool.failed += u64::from(record.calls);
            }
            tool.upstream_requests += u64::from(record.upstream_requests);
            callers.insert(month.customer.id.as_str());
        }
    }
    customers.sort_by(|a, b| b.counted.cmp(&a.counted).then(b.calls.cmp(&a.calls)).then(a.id.cmp(&b.id)));
    let mut tools: Vec<ToolUsage> = tools
        .into_values()
        .map(|(mut tool, callers)| {
            tool.customers = callers.len();
            tool
        })
        .collect();
    tools.sort_by(|a, b| b.calls.cmp(&a.calls).then(a.tool.cmp(&b.tool)));
    (customers, tools)
}

pub async fn run(gateway: &Arc<Gateway>, month: Option<String>, limit: usize, out: Printer) -> Result<(), CliError> {
    if limit == 0 {
        return Err(CliError::Usage("--limit must be at least 1".into()));
    }
    let now = gateway.now();
    let month = match month {
        Some(text) => Month::parse(&text)?,
        None => Month::of(now),
    };
    let store = gateway.store();
    let mut months = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store.list_customers(after.as_deref(), 100).await?;
        for customer in page.items {
            let counted = store.counter(&billing::usage_counter_key(&customer.id, month)).await?;
            let records = store.call_records(&customer.id, month.start(), month.end(), RECORDS_PER_CUSTOMER, now).await?;
            months.push(CustomerMonth { customer, counted, records });
        }
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let (mut customers, mut tools) = rank(&months);
    let (active_customers, used_tools) = (customers.len(), tools.len());
    customers.truncate(limit);
    tools.truncate(limit);
    let value = json!({
        "month": month,
        "active_customers": active_customers,
        "tools_used": used_tools,
        "customers": customers,
        "tools": tools,
    });
    out.print(&value, || text(month, &customers, &tools, active_customers, used_tools));
    Ok(())
}

fn text(month: Month, customers: &[CustomerUsage], tools: &[ToolUsage], active: usize, used: usize) -> String {
    if customers.is_empty() {
        return format!("No tool calls in {month}.");
    }
    let mut text = format!("Heaviest customers in {month} ({} of {active} with calls):\n", customers.len());
    let rows: Vec<Vec<String>> = customers
        .iter()
        .map(|c| {
            let calls = if c.truncated { format!("{}+", c.calls) } else { c.calls.to_string() };
            vec![c.id.clone(), c.email.clone(), c.plan.clone(), c.counted.to_string(), calls, c.failed.to_string(), c.upstream_requests.to_string()]
        })
        .collect();
    text.push_str(&table(&["CUSTOMER", "EMAIL", "PLAN", "COUNTED", "CALLS", "FAILED", "UPSTREAM"], &rows));
    text.push_str(&format!("\nHeaviest tools in {month} ({} of {used} used):\n", tools.len()));
    let rows: Vec<Vec<String>> = tools
        .iter()
        .map(|t| {
            vec![t.tool.clone(), t.platform.clone(), t.calls.to_string(), t.failed.to_string(), t.customers.to_string(), t.upstream_requests.to_string()]
        })
        .collect();
    text.push_str(&table(&["TOOL", "PLATFORM", "CALLS", "FAILED", "CUSTOMERS", "UPSTREAM"], &rows));
    text.push_str("\nCOUNTED: calls billed against the plan; CALLS: all recorded calls; UPSTREAM: requests to the platforms.");
    text
}

/// Columns padded to their widest cell, two spaces apart, numbers as text.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(cell, width)| format!("{cell:<width$}")).collect();
        format!("  {}", padded.join("  ").trim_end())
    };
    let mut lines = vec![line(header.to_vec())];
    lines.extend(rows.iter().map(|row| line(row.iter().map(String::as_str).collect())));
    lines.join("\n")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use serde_json::json;
    use squaremcp_core::{CustomerId, Email, Platform, PlanName, Timestamp};

    use super::*;

    fn customer(email: &str, plan: &str) -> Customer {
        Customer {
            id: CustomerId::generate(),
            email: Email::parse(email).unwrap(),
            plan: PlanName::parse(plan).unwrap(),
            password_hash: None,
            created_at: Timestamp::from_unix(0),
        }
    }

    fn record(customer: &Customer, tool: &str, platform: Platform, outcome: &str, upstream: u32) -> CallRecord {
        let at = Timestamp::from_unix(1_780_000_000);
        CallRecord {
            id: CallRecord::new_id(at),
            customer_id: customer.id.clone(),
            at,
            tool: tool.into(),
            platform,
            auth_method: "api_key".into(),
            client: None,
            duration_ms: 1,
            upstream_requests: upstream,
            outcome: outcome.into(),
            counted: outcome == "ok",
            arguments: json!({}),
            expires_at: at.plus_seconds(60),
            calls: 1,
        }
    }

    #[test]
    fn customers_rank_by_counted_calls_and_tools_by_calls() {
        let (light, heavy, idle) = (customer("light@example.com", "free"), customer("heavy@example.com", "pro"), customer("idle@example.com", "pro"));
        let months = vec![
            CustomerMonth {
                records: vec![
                    record(&light, "x_post", Platform::Twitter, "ok", 1),
                    record(&light, "telegram_get_me", Platform::Telegram, "rate_limited", 1),
                    // Five invalid calls logged as one record.
                    CallRecord { calls: 5, ..record(&light, "x_post", Platform::Twitter, "invalid_input", 0) },
                ],
                counted: 1,
                customer: light.clone(),
            },
            CustomerMonth {
                records: (0..3).map(|_| record(&heavy, "telegram_get_me", Platform::Telegram, "ok", 2)).collect(),
                counted: 3,
                customer: heavy.clone(),
            },
            CustomerMonth { records: vec![], counted: 0, customer: idle },
        ];
        let (customers, tools) = rank(&months);
        let order: Vec<(&str, u64, u64, u64, u64)> =
            customers.iter().map(|c| (c.email.as_str(), c.counted, c.calls, c.failed, c.upstream_requests)).collect();
        assert_eq!(order, [("heavy@example.com", 3, 3, 0, 6), ("light@example.com", 1, 7, 6, 2)], "no idle customer");
        let tools: Vec<(&str, &str, u64, u64, usize, u64)> =
            tools.iter().map(|t| (t.tool.as_str(), t.platform.as_str(), t.calls, t.failed, t.customers, t.upstream_requests)).collect();
        assert_eq!(tools, [("x_post", "twitter", 6, 5, 1, 1), ("telegram_get_me", "telegram", 4, 1, 2, 7)]);
    }

    #[test]
    fn tables_align_their_columns() {
        let text = table(&["A", "LONGER"], &[vec!["wide cell".into(), "1".into()], vec!["b".into(), "22".into()]]);
        assert_eq!(text, "  A          LONGER\n  wide cell  1\n  b          22");
    }
}
