//! Plans: a monthly price, a number of included tool calls, and what a call over that costs.
//! Built-in defaults, replaceable by a TOML file (`SQUAREMCP_PLANS`).

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::PlanName;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub name: PlanName,
    /// Tool calls included per calendar month.
    pub monthly_calls: u64,
    /// Monthly base price in cents.
    pub price_cents: u64,
    /// Price of each call over `monthly_calls`, in cents. `None`: calls over the limit are refused.
    pub overage_cents: Option<u64>,
}

impl Plan {
    /// The limit the usage counter enforces atomically: only plans without overage refuse calls.
    pub fn hard_limit(&self) -> Option<u64> {
        if self.overage_cents.is_none() { Some(self.monthly_calls) } else { None }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanCatalog {
    plans: BTreeMap<String, Plan>,
}

#[derive(Debug, thiserror::Error)]
#[error("invalid plans file: {0}")]
pub struct PlansError(String);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlansFile {
    plans: BTreeMap<String, PlanEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanEntry {
    monthly_calls: u64,
    price_cents: u64,
    overage_cents: Option<u64>,
}

impl PlanCatalog {
    /// free: 100 calls, no charge, hard limit. pro: $19, 10,000 calls, then 1¢ a call.
    /// business: $99, 100,000 calls, then 1¢ a call.
    pub fn builtin() -> Self {
        let plan = |name: &str, monthly_calls, price_cents, overage_cents| {
            let name = PlanName::parse(name).unwrap_or_else(|_| unreachable!("built-in plan names are valid"));
            (name.as_str().to_owned(), Plan { name, monthly_calls, price_cents, overage_cents })
        };
        Self {
            plans: BTreeMap::from([
                plan("free", 100, 0, None),
                plan("pro", 10_000, 1_900, Some(1)),
                plan("business", 100_000, 9_900, Some(1)),
            ]),
        }
    }

    /// `[plans.NAME]` tables with `monthly_calls`, `price_cents` and optional `overage_cents`.
    /// The file replaces the built-in plans entirely.
    pub fn from_toml(text: &str) -> Result<Self, PlansError> {
        let file: PlansFile = toml::from_str(text).map_err(|e| PlansError(e.to_string()))?;
        if file.plans.is_empty() {
            return Err(PlansError("it defines no plan; add a [plans.NAME] table".into()));
        }
        let mut plans = BTreeMap::new();
        for (name, entry) in file.plans {
            let parsed = PlanName::parse(&name).map_err(|e| PlansError(format!("[plans.{name}]: {e}")))?;
            plans.insert(
                name,
                Plan {
                    name: parsed,
                    monthly_calls: entry.monthly_calls,
                    price_cents: entry.price_cents,
                    overage_cents: entry.overage_cents,
                },
            );
        }
        Ok(Self { plans })
    }

    pub fn get(&self, name: &PlanName) -> Option<&Plan> {
        self.plans.get(name.as_str())
    }

    pub fn names(&self) -> Vec<&str> {
        self.plans.keys().map(String::as_str).collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Plan> {
        self.plans.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_plans() {
        let catalog = PlanCatalog::builtin();
        assert_eq!(catalog.names(), ["business", "free", "pro"]);
        let free = catalog.get(&PlanName::parse("free").expect("name")).expect("free");
        assert_eq!(free.hard_limit(), Some(100));
        let pro = catalog.get(&PlanName::parse("pro").expect("name")).expect("pro");
        assert_eq!((pro.price_cents, pro.overage_cents, pro.hard_limit()), (1_900, Some(1), None));
    }

    #[test]
    fn plans_from_toml() {
        let catalog = PlanCatalog::from_toml(
            "[plans.tiny]\nmonthly_calls = 50\nprice_cents = 0\n\n[plans.team]\nmonthly_calls = 1000\nprice_cents = 4900\noverage_cents = 2\n",
        )
        .expect("valid file");
        assert_eq!(catalog.names(), ["team", "tiny"]);
        let tiny = catalog.get(&PlanName::parse("tiny").expect("name")).expect("tiny");
        assert_eq!(tiny.hard_limit(), Some(50));
        for bad in ["", "[plans]", "[plans.Tiny]\nmonthly_calls = 1\nprice_cents = 0", "[plans.x]\nmonthly_calls = -1\nprice_cents = 0", "[plans.x]\nmonthly_calls = 1\nprice_cents = 0\nextra = 1"] {
            assert!(PlanCatalog::from_toml(bad).is_err(), "{bad:?}");
        }
    }
}
