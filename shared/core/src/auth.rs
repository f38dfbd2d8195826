//! Who is calling.

use serde::Serialize;

use crate::CustomerId;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    /// The operator, by the configured admin key. Has no platform credentials of its own.
    Superadmin,
    Customer { id: CustomerId },
}

impl Principal {
    pub fn customer_id(&self) -> Option<&CustomerId> {
        match self {
            Principal::Customer { id } => Some(id),
            Principal::Superadmin => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    AdminKey,
    ApiKey,
    /// An access token issued by the gateway's OAuth authorization server.
    OAuth,
    /// A bearer JWT `{sub, email, plan, role}` signed by the gateway.
    Jwt,
}
