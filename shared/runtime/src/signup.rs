//! Self-service sign-up and reset settings (`SQUAREMCP_SIGNUP`, `SQUAREMCP_SIGNUP_PLAN`,
//! `SQUAREMCP_SIGNUP_LINK_TTL`), and the plan a new customer gets.

use squaremcp_core::PlanName;
use squaremcp_core::billing::PlanCatalog;

use crate::config::ConfigError;

/// As configured; [`SignupConfig::policy`] turns it into what `squaremcp-auth` enforces.
#[derive(Clone, Debug, Default)]
pub struct SignupConfig {
    pub open: bool,
    /// `None`: the cheapest plan of the catalog.
    pub plan: Option<String>,
    /// Seconds a verification or reset link works.
    pub link_ttl: i64,
    /// In a Lambda (`AWS_LAMBDA_RUNTIME_API` set): mail is sent before answering, within
    /// [`LAMBDA_ANSWER_FLOOR`], which every sign-up and reset answer then takes.
    pub in_lambda: bool,
}

/// How long a sign-up or reset request takes in a Lambda, whether or not it sends mail: longer
/// than an SMTP hand-off normally takes, so that timing does not tell a known address.
pub const LAMBDA_ANSWER_FLOOR: std::time::Duration = std::time::Duration::from_secs(3);

fn error(variable: &str, why: impl Into<String>) -> ConfigError {
    ConfigError {
        variable: variable.to_owned(),
        why: why.into(),
    }
}

/// Reads the settings. Open sign-up mails links, so it needs `SQUAREMCP_SMTP_URL`: without one
/// nobody could ever finish signing up, which is refused at start rather than found out later.
pub(crate) fn from_lookup(
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<SignupConfig, ConfigError> {
    let open = match get("SQUAREMCP_SIGNUP").as_deref() {
        None | Some("closed") => false,
        Some("open") => true,
        Some(other) => {
            return Err(error(
                "SQUAREMCP_SIGNUP",
                format!("`{other}` is neither `open` nor `closed`"),
            ));
        }
    };
    if open && get("SQUAREMCP_SMTP_URL").is_none() {
        return Err(error(
            "SQUAREMCP_SIGNUP",
            "open sign-up sends verification and reset links by email: set SQUAREMCP_SMTP_URL (and SQUAREMCP_MAIL_FROM) too",
        ));
    }
    let plan = match get("SQUAREMCP_SIGNUP_PLAN") {
        Some(text) => Some(
            PlanName::parse(&text)
                .map_err(|e| error("SQUAREMCP_SIGNUP_PLAN", e.to_string()))?
                .as_str()
                .to_owned(),
        ),
        None => None,
    };
    let link_ttl = match get("SQUAREMCP_SIGNUP_LINK_TTL") {
        Some(text) => text
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=7 * 24 * 3600).contains(n))
            .ok_or_else(|| {
                error(
                    "SQUAREMCP_SIGNUP_LINK_TTL",
                    format!("`{text}` is not a number of seconds between 1 and 604800"),
                )
            })?,
        None => 3600,
    };
    Ok(SignupConfig {
        open,
        plan,
        link_ttl,
        in_lambda: get("AWS_LAMBDA_RUNTIME_API").is_some(),
    })
}

impl SignupConfig {
    /// The policy, with the plan checked against the catalog (or the cheapest one chosen).
    pub fn policy(&self, plans: &PlanCatalog) -> Result<squaremcp_auth::SignupPolicy, ConfigError> {
        let plan = match &self.plan {
            Some(name) => {
                let parsed = PlanName::parse(name)
                    .map_err(|e| error("SQUAREMCP_SIGNUP_PLAN", e.to_string()))?;
                if plans.get(&parsed).is_none() {
                    return Err(error(
                        "SQUAREMCP_SIGNUP_PLAN",
                        format!(
                            "`{name}` is not a plan; offered: {}",
                            plans.names().join(", ")
                        ),
                    ));
                }
                name.clone()
            }
            None => plans
                .iter()
                .min_by_key(|plan| (plan.price_cents, plan.monthly_calls))
                .map(|plan| plan.name.as_str().to_owned())
                .ok_or_else(|| {
                    error(
                        "SQUAREMCP_PLANS",
                        "the catalog offers no plan to sign up on",
                    )
                })?,
        };
        Ok(squaremcp_auth::SignupPolicy {
            open: self.open,
            plan,
            link_ttl: self.link_ttl,
            answer_floor: self.in_lambda.then_some(LAMBDA_ANSWER_FLOOR),
            ..squaremcp_auth::SignupPolicy::default()
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::BTreeMap;

    use super::*;

    fn parse(vars: &[(&str, &str)]) -> Result<SignupConfig, ConfigError> {
        let vars: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        from_lookup(&|name| vars.get(name).cloned())
    }

    #[test]
    fn in_a_lambda_mail_is_sent_before_answering_within_the_floor() {
        let plans = PlanCatalog::builtin();
        let serve = parse(&[]).unwrap().policy(&plans).unwrap();
        assert_eq!(serve.answer_floor, None);
        let lambda = parse(&[("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001")]).unwrap().policy(&plans).unwrap();
        assert_eq!(lambda.answer_floor, Some(LAMBDA_ANSWER_FLOOR));
    }

    #[test]
    fn closed_by_default_and_open_only_with_smtp() {
        let closed = parse(&[]).unwrap();
        assert!(!closed.open);
        assert_eq!(closed.link_ttl, 3600);
        let refused = parse(&[("SQUAREMCP_SIGNUP", "open")])
            .unwrap_err()
            .to_string();
        assert!(refused.contains("SQUAREMCP_SMTP_URL"), "{refused}");
        let open = parse(&[
            ("SQUAREMCP_SIGNUP", "open"),
            ("SQUAREMCP_SMTP_URL", "smtp://127.0.0.1:25"),
        ])
        .unwrap();
        assert!(open.open);
        assert!(parse(&[("SQUAREMCP_SIGNUP", "yes")]).is_err());
        assert!(parse(&[("SQUAREMCP_SIGNUP_LINK_TTL", "0")]).is_err());
        assert_eq!(
            parse(&[("SQUAREMCP_SIGNUP_LINK_TTL", "120")])
                .unwrap()
                .link_ttl,
            120
        );
    }

    #[test]
    fn the_plan_defaults_to_the_cheapest_and_must_be_offered() {
        let plans = PlanCatalog::builtin();
        let cheapest = plans
            .iter()
            .min_by_key(|p| (p.price_cents, p.monthly_calls))
            .unwrap()
            .name
            .as_str()
            .to_owned();
        assert_eq!(parse(&[]).unwrap().policy(&plans).unwrap().plan, cheapest);
        assert_eq!(
            parse(&[("SQUAREMCP_SIGNUP_PLAN", "pro")])
                .unwrap()
                .policy(&plans)
                .unwrap()
                .plan,
            "pro"
        );
        let refused = parse(&[("SQUAREMCP_SIGNUP_PLAN", "platinum")])
            .unwrap()
            .policy(&plans)
            .unwrap_err()
            .to_string();
        assert!(refused.contains("offered"), "{refused}");
    }
}
