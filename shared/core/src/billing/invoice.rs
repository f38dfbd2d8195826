//! Invoices: one per customer and finished month, in integer cents, with a stable number.

use serde::{Deserialize, Serialize};

use super::{Month, Plan};
use crate::{Customer, CustomerId, Timestamp};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceLine {
    pub description: String,
    pub quantity: u64,
    pub unit_cents: u64,
    pub amount_cents: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invoice {
    /// `SQM-<YYYYMM>-<customer id>`: the same whoever computes it, and unique, because a
    /// customer has one invoice per month. Invoices created before the whole id was used keep
    /// their stored `SQM-<YYYYMM>-<last 8 characters, upper case>` number (an 8-character tail
    /// can be shared by two customers; a whole id, starting `cus_`, cannot match such a tail).
    pub number: String,
    pub customer_id: CustomerId,
    pub email: String,
    pub month: Month,
    pub plan: String,
    pub calls: u64,
    pub lines: Vec<InvoiceLine>,
    pub total_cents: u64,
    pub currency: String,
    pub created_at: Timestamp,
    /// Set only after the SMTP server accepted the email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<Timestamp>,
}

impl Invoice {
    /// The invoice for `calls` counted calls in `month`, or `None` when there is nothing to bill
    /// (a free plan without usage).
    pub fn compute(customer: &Customer, plan: &Plan, month: Month, calls: u64, now: Timestamp) -> Option<Self> {
        if calls == 0 && plan.price_cents == 0 {
            return None;
        }
        let mut lines = vec![InvoiceLine {
            description: format!("Plan {} for {month} ({} tool calls included)", plan.name.as_str(), thousands(plan.monthly_calls)),
            quantity: 1,
            unit_cents: plan.price_cents,
            amount_cents: plan.price_cents,
        }];
        let over = calls.saturating_sub(plan.monthly_calls);
        if let (Some(unit), true) = (plan.overage_cents, over > 0) {
            lines.push(InvoiceLine {
                description: format!("Tool calls over the {} included", thousands(plan.monthly_calls)),
                quantity: over,
                unit_cents: unit,
                amount_cents: over.saturating_mul(unit),
            });
        }
        let total_cents = lines.iter().map(|l| l.amount_cents).fold(0u64, u64::saturating_add);
        Some(Self {
            number: format!("SQM-{}-{}", month.compact(), customer.id.as_str()),
            customer_id: customer.id.clone(),
            email: customer.email.as_str().to_owned(),
            month,
            plan: plan.name.as_str().to_owned(),
            calls,
            lines,
            total_cents,
            currency: "USD".to_owned(),
            created_at: now,
            sent_at: None,
        })
    }

    pub fn subject(&self) -> String {
        format!("Your SquareMCP invoice {} for {}", self.number, self.month)
    }

    pub fn text(&self) -> String {
        let mut text = format!(
            "SquareMCP invoice {}\nMonth: {}\nCustomer: {} ({})\n\n",
            self.number, self.month, self.email, self.customer_id
        );
        for line in &self.lines {
            text.push_str(&format!(
                "{}\n  {} x {} = {}\n",
                line.description,
                thousands(line.quantity),
                money(line.unit_cents),
                money(line.amount_cents)
            ));
        }
        text.push_str(&format!("\nTotal: {} {}\nTool calls counted: {}\n", money(self.total_cents), self.currency, thousands(self.calls)));
        text
    }

    pub fn html(&self) -> String {
        let rows: String = self
            .lines
            .iter()
            .map(|l| {
                format!(
                    "<tr><td>{}</td><td style=\"text-align:right\">{}</td><td style=\"text-align:right\">{}</td><td style=\"text-align:right\">{}</td></tr>",
                    escape(&l.description),
                    thousands(l.quantity),
                    money(l.unit_cents),
                    money(l.amount_cents)
                )
            })
            .collect();
        format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title></head>\
             <body style=\"font-family:system-ui,sans-serif;max-width:40rem;margin:auto;padding:1rem\">\
             <h1 style=\"font-size:1.25rem\">SquareMCP invoice {number}</h1>\
             <p>Month: {month}<br>Customer: {email} ({customer})</p>\
             <table style=\"width:100%;border-collapse:collapse\"><thead><tr><th style=\"text-align:left\">Item</th>\
             <th style=\"text-align:right\">Quantity</th><th style=\"text-align:right\">Unit</th><th style=\"text-align:right\">Amount</th></tr></thead>\
             <tbody>{rows}</tbody><tfoot><tr><th style=\"text-align:left\" colspan=\"3\">Total ({currency})</th>\
             <th style=\"text-align:right\" data-total-cents=\"{cents}\">{total}</th></tr></tfoot></table>\
             <p>Tool calls counted: {calls}</p></body></html>",
            title = escape(&self.subject()),
            number = escape(&self.number),
            month = self.month,
            email = escape(&self.email),
            customer = self.customer_id,
            currency = escape(&self.currency),
            cents = self.total_cents,
            total = money(self.total_cents),
            calls = thousands(self.calls),
        )
    }
}

/// `$1,234.56` from cents.
pub fn money(cents: u64) -> String {
    format!("${}.{:02}", thousands(cents / 100), cents % 100)
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::billing::PlanCatalog;
    use crate::{Email, PlanName};

    fn customer(plan: &str) -> Customer {
        Customer {
            id: CustomerId::parse("cus_0123456789abcdef01234567").expect("id"),
            email: Email::parse("ada@example.com").expect("email"),
            plan: PlanName::parse(plan).expect("plan"),
            password_hash: None,
            created_at: Timestamp::from_unix(0),
        }
    }

    fn plan(name: &str) -> Plan {
        PlanCatalog::builtin().get(&PlanName::parse(name).expect("name")).cloned().expect("plan")
    }

    #[test]
    fn base_price_and_overage_in_cents() {
        let month = Month::parse("2026-10").expect("month");
        let invoice = Invoice::compute(&customer("pro"), &plan("pro"), month, 12_345, Timestamp::from_unix(1)).expect("billed");
        assert_eq!(invoice.number, "SQM-202610-cus_0123456789abcdef01234567");
        assert_eq!(invoice.lines.len(), 2);
        assert_eq!((invoice.lines[1].quantity, invoice.lines[1].amount_cents), (2_345, 2_345));
        assert_eq!(invoice.total_cents, 1_900 + 2_345);
        assert!(invoice.text().contains("Total: $42.45 USD"), "{}", invoice.text());
        assert!(invoice.html().contains("data-total-cents=\"4245\""));
        assert!(invoice.text().contains("2,345 x $0.01 = $23.45"), "{}", invoice.text());
    }

    #[test]
    fn customers_sharing_an_id_tail_get_different_numbers() {
        let month = Month::parse("2026-10").expect("month");
        let mut other = customer("pro");
        other.id = CustomerId::parse("cus_ffffffffffffffff01234567").expect("id");
        let first = Invoice::compute(&customer("pro"), &plan("pro"), month, 1, Timestamp::from_unix(1)).expect("billed");
        let second = Invoice::compute(&other, &plan("pro"), month, 1, Timestamp::from_unix(1)).expect("billed");
        assert_ne!(first.number, second.number);
        assert!(second.number.ends_with(other.id.as_str()), "{}", second.number);
    }

    #[test]
    fn within_the_plan_and_free_plans() {
        let month = Month::parse("2026-10").expect("month");
        let pro = Invoice::compute(&customer("pro"), &plan("pro"), month, 10, Timestamp::from_unix(1)).expect("billed");
        assert_eq!((pro.lines.len(), pro.total_cents), (1, 1_900));
        assert_eq!(Invoice::compute(&customer("free"), &plan("free"), month, 0, Timestamp::from_unix(1)), None);
        let used = Invoice::compute(&customer("free"), &plan("free"), month, 30, Timestamp::from_unix(1)).expect("usage is reported");
        assert_eq!(used.total_cents, 0);
        assert_eq!(money(123_456_789), "$1,234,567.89");
    }
}
