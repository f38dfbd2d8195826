//! Plans, metering and invoices.

pub mod history;
mod invoice;
mod month;
mod plans;
pub mod run;

pub use invoice::{Invoice, InvoiceLine, money};
pub use month::Month;
pub use plans::{Plan, PlanCatalog, PlansError};
pub use run::{InvoiceRun, RunError, RunReport};

use crate::CustomerId;

/// The usage counter of a customer for a month: one item, one atomic conditional add per call.
pub fn usage_counter_key(customer: &CustomerId, month: Month) -> String {
    format!("usage#{customer}#{month}")
}
