//! `squaremcp webhooks`: a customer's outbound webhook endpoints (add, list, remove,
//! rotate-secret), the delivery log, and the dead letters (list, replay). A secret is printed
//! once, by `add` and `rotate-secret`, and never again.

use clap::{ArgGroup, Args, Subcommand};
use serde_json::{Value, json};
use squaremcp_core::{CustomerId, Gateway, Timestamp};
use squaremcp_runtime::{Backends, Config};
use squaremcp_webhooks::delivery::{AttemptRecord, DeadLetter};
use squaremcp_webhooks::{Endpoint, NewEndpoint};

use crate::admin::CliError;
use crate::args::CustomerArg;
use crate::output::Printer;

#[derive(Subcommand, Debug)]
pub enum WebhooksCommand {
    /// Register an endpoint; prints its id and its signing secret (whsec_…) once.
    Add {
        #[command(flatten)]
        customer: CustomerArg,
        /// Where events are POSTed (http or https; private addresses are refused unless
        /// SQUAREMCP_ALLOW_PRIVATE_HOSTS=1).
        #[arg(long)]
        url: String,
        /// Event types, comma-separated [default: all]
        #[arg(long, value_delimiter = ',')]
        events: Vec<String>,
    },
    /// A customer's endpoints (never their secrets).
    List {
        #[command(flatten)]
        customer: CustomerArg,
    },
    /// Remove an endpoint; queued deliveries to it are dropped.
    Remove {
        #[command(flatten)]
        customer: CustomerArg,
        /// Endpoint id (ep_…).
        #[arg(long)]
        endpoint: String,
    },
    /// Turn an endpoint disabled for failing too long back on (then replay its dead letters).
    Enable {
        #[command(flatten)]
        customer: CustomerArg,
        /// Endpoint id (ep_…).
        #[arg(long)]
        endpoint: String,
    },
    /// A new secret signs from now on; the previous one also signs for 24 hours. Prints the new
    /// secret once.
    #[command(name = "rotate-secret")]
    RotateSecret {
        #[command(flatten)]
        customer: CustomerArg,
        /// Endpoint id (ep_…).
        #[arg(long)]
        endpoint: String,
    },
    /// The newest delivery attempts (status, latency, error), newest first.
    Attempts {
        #[command(flatten)]
        customer: CustomerArg,
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Events that ran out of attempts: list them, or replay them.
    #[command(subcommand)]
    Dlq(DlqCommand),
}

#[derive(Subcommand, Debug)]
pub enum DlqCommand {
    /// The customer's dead letters, newest first.
    List {
        #[command(flatten)]
        customer: CustomerArg,
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Deliver dead letters once more, now; each one delivered is removed from the list.
    Replay(ReplayArgs),
}

#[derive(Args, Debug)]
#[command(group(ArgGroup::new("which").required(true).args(["id", "all"])))]
pub struct ReplayArgs {
    #[command(flatten)]
    pub customer: CustomerArg,
    /// Dead-letter id (dl_…), as `dlq list` shows it.
    #[arg(long)]
    pub id: Option<String>,
    /// Every dead letter of the customer.
    #[arg(long)]
    pub all: bool,
}

pub async fn run(config: &Config, backends: &Backends, gateway: &Gateway, command: WebhooksCommand, out: Printer) -> Result<(), CliError> {
    let deliverer = squaremcp_runtime::deliverer(config, backends)?.ok_or_else(|| {
        CliError::Usage("outbound webhooks need the retry and dead-letter queues: set SQUAREMCP_RETRY_QUEUE_URL and SQUAREMCP_DEAD_LETTER_QUEUE_URL".into())
    })?;
    let endpoints = deliverer.endpoints();
    let customer_of = |arg: &CustomerArg| CustomerId::parse(&arg.customer);
    match command {
        WebhooksCommand::Add { customer, url, events } => {
            let customer = customer_of(&customer)?;
            gateway.require_customer(&customer).await?;
            let (endpoint, secret) = endpoints.add(&customer, NewEndpoint { url, events }).await?;
            let mut shown = endpoint_json(&endpoint, deliverer.clock.now());
            shown["secret"] = json!(secret.expose());
            out.print(&shown, || {
                format!(
                    "Added endpoint {} → {} ({})\n{}   (signing secret, shown once)",
                    endpoint.id,
                    endpoint.url,
                    events_text(&endpoint),
                    secret.expose()
                )
            });
        }
        WebhooksCommand::List { customer } => {
            let customer = customer_of(&customer)?;
            gateway.require_customer(&customer).await?;
            let list = endpoints.list(&customer).await?;
            let now = deliverer.clock.now();
            out.print(&Value::Array(list.iter().map(|e| endpoint_json(e, now)).collect()), || {
                if list.is_empty() {
                    return format!("{customer} has no webhook endpoints.");
                }
                list.iter()
                    .map(|e| format!("{}  {}  {}  secrets={}{}", e.id, e.url, events_text(e), e.valid_secrets(now), health_text(e)))
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        WebhooksCommand::Remove { customer, endpoint } => {
            let customer = customer_of(&customer)?;
            endpoints.remove(&customer, &endpoint).await?;
            out.print(&json!({"removed": endpoint}), || format!("Removed endpoint {endpoint}."));
        }
        WebhooksCommand::Enable { customer, endpoint } => {
            let customer = customer_of(&customer)?;
            let endpoint = endpoints.enable(&customer, &endpoint).await?;
            out.print(&endpoint_json(&endpoint, deliverer.clock.now()), || {
                format!("Enabled endpoint {} → {}. Replay what it missed with `squaremcp webhooks dlq replay --all`.", endpoint.id, endpoint.url)
            });
        }
        WebhooksCommand::RotateSecret { customer, endpoint } => {
            let customer = customer_of(&customer)?;
            let (endpoint, secret) = endpoints.rotate_secret(&customer, &endpoint).await?;
            let mut shown = endpoint_json(&endpoint, deliverer.clock.now());
            shown["secret"] = json!(secret.expose());
            out.print(&shown, || {
                format!(
                    "New secret for {} (the previous one also signs for 24 hours):\n{}   (shown once)",
                    endpoint.id,
                    secret.expose()
                )
            });
        }
        WebhooksCommand::Attempts { customer, limit } => {
            let customer = customer_of(&customer)?;
            let attempts = deliverer.attempts(&customer, limit).await?;
            out.print(&Value::Array(attempts.iter().map(attempt_json).collect()), || {
                if attempts.is_empty() {
                    return format!("{customer} has no delivery attempts.");
                }
                attempts
                    .iter()
                    .map(|a| {
                        format!(
                            "{}  {}  {}  attempt {}{}  {}  {} ms{}",
                            a.at.to_rfc3339(),
                            a.event_id,
                            a.endpoint,
                            a.attempt,
                            if a.replay { " (replay)" } else { "" },
                            a.status.map_or_else(|| "-".to_owned(), |s| s.to_string()),
                            a.latency_ms,
                            a.error.as_deref().map(|e| format!("  {e}")).unwrap_or_default()
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        WebhooksCommand::Dlq(DlqCommand::List { customer, limit }) => {
            let customer = customer_of(&customer)?;
            let letters = deliverer.dead_letters(&customer, limit).await?;
            out.print(&Value::Array(letters.iter().map(dead_letter_json).collect()), || {
                if letters.is_empty() {
                    return format!("{customer} has no dead letters.");
                }
                letters
                    .iter()
                    .map(|d| {
                        format!(
                            "{}  {}  {}  {}  attempts={}  {}{}",
                            d.id,
                            d.dead_at.to_rfc3339(),
                            d.job.event.id,
                            d.job.event.event_type,
                            d.attempts,
                            d.job.endpoint,
                            d.last_error.as_deref().map(|e| format!("  {e}")).unwrap_or_default()
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        WebhooksCommand::Dlq(DlqCommand::Replay(ReplayArgs { customer, id, all })) => {
            let customer = customer_of(&customer)?;
            let ids: Vec<String> = match id {
                Some(id) if !all => vec![id],
                _ => deliverer.dead_letters(&customer, usize::MAX).await?.into_iter().map(|d| d.id).rev().collect(),
            };
            let mut results = Vec::new();
            for id in &ids {
                results.push(deliverer.replay(&customer, id).await?);
            }
            let failed = results.iter().filter(|r| !r.delivered).count();
            let shown: Vec<Value> = results
                .iter()
                .map(|r| json!({"id": r.id, "event_id": r.event_id, "delivered": r.delivered, "error": r.error}))
                .collect();
            out.print(&json!({"replayed": shown, "delivered": results.len() - failed, "failed": failed}), || {
                let mut lines: Vec<String> = results
                    .iter()
                    .map(|r| match &r.error {
                        None => format!("{}  {}  delivered", r.id, r.event_id),
                        Some(e) => format!("{}  {}  failed: {e} (kept)", r.id, r.event_id),
                    })
                    .collect();
                lines.push(format!("{} delivered, {failed} failed.", results.len() - failed));
                lines.join("\n")
            });
            if failed > 0 {
                return Err(CliError::Usage(format!("{failed} of {} dead letters could not be delivered; they stay listed", results.len())));
            }
        }
    }
    Ok(())
}

fn events_text(endpoint: &Endpoint) -> String {
    if endpoint.events.is_empty() { "all events".to_owned() } else { endpoint.events.join(",") }
}

/// `DISABLED` (since when, for failing), or since when it has been failing.
fn health_text(endpoint: &Endpoint) -> String {
    match (endpoint.disabled, endpoint.disabled_at, endpoint.failing_since) {
        (true, Some(at), _) => format!("  DISABLED since {} (every delivery failed; `webhooks enable` turns it back on)", at.to_rfc3339()),
        (true, None, _) => "  DISABLED".to_owned(),
        (false, _, Some(since)) => format!("  failing since {}", since.to_rfc3339()),
        (false, _, None) => String::new(),
    }
}

fn endpoint_json(endpoint: &Endpoint, now: Timestamp) -> Value {
    json!({
        "id": endpoint.id,
        "url": endpoint.url,
        "events": endpoint.events,
        "disabled": endpoint.disabled,
        "disabled_at": endpoint.disabled_at.map(Timestamp::to_rfc3339),
        "failing_since": endpoint.failing_since.map(Timestamp::to_rfc3339),
        "valid_secrets": endpoint.valid_secrets(now),
        "created_at": endpoint.created_at.to_rfc3339(),
    })
}

fn attempt_json(a: &AttemptRecord) -> Value {
    json!({
        "event_id": a.event_id, "event_type": a.event_type, "endpoint": a.endpoint, "attempt": a.attempt,
        "at": a.at.to_rfc3339(), "status": a.status, "latency_ms": a.latency_ms, "error": a.error,
        "delivered": a.delivered, "replay": a.replay,
    })
}

fn dead_letter_json(d: &DeadLetter) -> Value {
    json!({
        "id": d.id, "event_id": d.job.event.id, "event_type": d.job.event.event_type, "endpoint": d.job.endpoint,
        "attempts": d.attempts, "last_error": d.last_error, "dead_at": d.dead_at.to_rfc3339(),
        "event": {"type": d.job.event.event_type, "timestamp": d.job.event.timestamp, "data": d.job.event.data},
    })
}
