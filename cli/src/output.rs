//! What commands print: text for people, `--json` for scripts. Secrets are never part of it,
//! except the new API key that `api-keys create` shows once.

use serde_json::{Value, json};
use squaremcp_core::connections::Connection;
use squaremcp_core::{ApiKeyRecord, CredentialRecord, Customer};

#[derive(Clone, Copy)]
pub struct Printer {
    pub json: bool,
}

impl Printer {
    pub fn print(self, value: &Value, text: impl FnOnce() -> String) {
        if self.json {
            println!("{value:#}");
        } else {
            println!("{}", text());
        }
    }
}

pub fn error(json: bool, error: &dyn std::error::Error) {
    if json {
        eprintln!("{}", json!({"error": error.to_string()}));
    } else {
        eprintln!("error: {error}");
    }
}

pub fn customer_json(customer: &Customer) -> Value {
    json!({
        "id": customer.id,
        "email": customer.email,
        "plan": customer.plan,
        "has_password": customer.password_hash.is_some(),
        "created_at": customer.created_at.to_rfc3339(),
    })
}

pub fn key_json(key: &ApiKeyRecord) -> Value {
    json!({
        "id": key.id,
        "customer_id": key.customer_id,
        "name": key.name,
        "prefix": key.prefix,
        "created_at": key.created_at.to_rfc3339(),
        "revoked_at": key.revoked_at.map(|t| t.to_rfc3339()),
        "active": key.is_active(),
    })
}

pub fn credential_json(record: &CredentialRecord) -> Value {
    json!({
        "customer_id": record.customer_id,
        "platform": record.platform,
        "account": record.account,
        "key_version": record.sealed.key_version,
        "created_at": record.created_at.to_rfc3339(),
        "updated_at": record.updated_at.to_rfc3339(),
    })
}

pub fn connection_json(connection: &Connection) -> Value {
    let mut health = serde_json::to_value(&connection.health).unwrap_or_else(|_| json!({"state": connection.health.name()}));
    health["checked_at"] = json!(connection.checked_at.map(|t| t.to_rfc3339()));
    json!({
        "platform": connection.platform,
        "account": connection.account,
        "health": health,
        "created_at": connection.created_at.to_rfc3339(),
        "updated_at": connection.updated_at.to_rfc3339(),
    })
}
