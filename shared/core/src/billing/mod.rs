//! Plans, metering and invoices.

mod month;
mod plans;

pub use month::Month;
pub use plans::{Plan, PlanCatalog, PlansError};

use crate::CustomerId;

/// The usage counter of a customer for a month: one item, one atomic conditional add per call.
pub fn usage_counter_key(customer: &CustomerId, month: Month) -> String {
    format!("usage#{customer}#{month}")
}
