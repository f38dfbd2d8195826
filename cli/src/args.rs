use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// SquareMCP: one MCP endpoint for every platform, with each customer's own credentials.
///
/// Settings come from the environment (SQUAREMCP_*); see docs/configuration.md.
#[derive(Parser, Debug)]
#[command(name = "squaremcp", version, propagate_version = true)]
pub struct Cli {
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,

    /// Directory with the SQLite store and key file [env: SQUAREMCP_DATA_DIR] [default: ./data]
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Backends: `sqlite` (SQLite, key file, in-process queues) or `dynamodb` (DynamoDB, KMS,
    /// SQS) [env: SQUAREMCP_STORE] [default: sqlite]
    #[arg(long, global = true, value_name = "STORE", value_parser = ["sqlite", "dynamodb"])]
    pub store: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Route groups to serve, comma-separated (mcp, oauth, login, webhooks), e.g. one
    /// Deployment per group behind ingress path rules. /healthz and /readyz are always served
    #[arg(long, value_name = "GROUPS", value_parser = parse_routes, default_value = "mcp,oauth,login,webhooks")]
    pub routes: RouteList,
}

/// The groups of one `--routes` value.
#[derive(Clone, Debug)]
pub struct RouteList(pub Vec<squaremcp_http::RouteGroup>);

fn parse_routes(list: &str) -> Result<RouteList, String> {
    squaremcp_http::RouteGroup::parse_list(list).map(RouteList)
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the whole gateway on one HTTP server (default 127.0.0.1:3456).
    Serve(ServeArgs),
    /// Create what the backends need, if missing: the data directory, database and key file;
    /// or (with `--store dynamodb`) the table, KMS key and alias, queues and first data key.
    Init {
        /// Name of the webhook retry queue (dynamodb only).
        #[arg(long, default_value = "squaremcp-delivery-retry")]
        retry_queue: String,
        /// Name of its dead-letter queue (dynamodb only).
        #[arg(long, default_value = "squaremcp-delivery-dlq")]
        dead_letter_queue: String,
    },
    /// Create and list customers.
    #[command(subcommand)]
    Customers(CustomersCommand),
    /// Create, list and revoke customer API keys.
    #[command(subcommand, name = "api-keys")]
    ApiKeys(ApiKeysCommand),
    /// Store, list and delete a customer's platform credentials (encrypted at rest).
    #[command(subcommand)]
    Credentials(CredentialsCommand),
    /// A customer's tool calls this month (or another) against their plan.
    #[command(subcommand)]
    Usage(UsageCommand),
    /// The call log: every tool call with its outcome, arguments redacted.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Monthly invoices: compute, store once and email.
    #[command(subcommand)]
    Invoices(InvoicesCommand),
    /// Outbound webhooks: a customer's endpoints and secrets, the delivery log, dead letters.
    #[command(subcommand)]
    Webhooks(crate::webhooks::WebhooksCommand),
    /// Telegram bots: switch a bot between polling and webhook mode.
    #[command(subcommand)]
    Telegram(crate::telegram::TelegramCommand),
}

#[derive(Subcommand, Debug)]
pub enum InvoicesCommand {
    /// Invoice a finished month (safe to repeat; a run that stopped resumes). The clock is
    /// SQUAREMCP_NOW when set.
    Run {
        /// Month as YYYY-MM [default: the previous month]
        #[arg(long)]
        month: Option<String>,
    },
    /// The stored invoices of a month.
    List {
        /// Month as YYYY-MM [default: the previous month]
        #[arg(long)]
        month: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum UsageCommand {
    /// Calls used, included and over the limit, by tool and outcome.
    Show {
        #[command(flatten)]
        customer: CustomerArg,
        /// Month as YYYY-MM [default: the current month]
        #[arg(long)]
        month: Option<String>,
    },
    /// The operator's view: the customers with the most calls and the most used tools.
    Top {
        /// Month as YYYY-MM [default: the current month]
        #[arg(long)]
        month: Option<String>,
        /// How many customers and tools to show.
        #[arg(long, default_value_t = 10)]
        limit: usize,
    },
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// The newest calls, newest first.
    Tail {
        #[command(flatten)]
        customer: CustomerArg,
        /// How many calls to show.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
}

#[derive(Subcommand, Debug)]
pub enum CustomersCommand {
    /// Create a customer.
    Create {
        #[arg(long)]
        email: String,
        /// Plan name, e.g. free, pro or business.
        #[arg(long, default_value = "free")]
        plan: String,
        /// Read the customer's login password from the first line of stdin.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List customers.
    List,
    /// Move a customer to another plan (running gateways apply it within a minute).
    SetPlan {
        #[command(flatten)]
        customer: CustomerArg,
        #[arg(long)]
        plan: String,
    },
    /// Set or change the password a customer signs in with (first line of stdin).
    SetPassword {
        #[command(flatten)]
        customer: CustomerArg,
    },
    /// End every session, OAuth grant and minted JWT of a customer (API keys keep working).
    RevokeSessions {
        #[command(flatten)]
        customer: CustomerArg,
    },
    /// Disable a customer: no sign-in; sessions, OAuth grants and API keys revoked.
    Disable {
        #[command(flatten)]
        customer: CustomerArg,
    },
    /// Let a disabled customer sign in again (what was revoked stays revoked).
    Enable {
        #[command(flatten)]
        customer: CustomerArg,
    },
}

#[derive(Args, Debug)]
pub struct CustomerArg {
    /// Customer id (cus_…).
    #[arg(long)]
    pub customer: String,
}

#[derive(Subcommand, Debug)]
pub enum ApiKeysCommand {
    /// Create an API key. The key is printed once and never stored.
    Create {
        #[command(flatten)]
        customer: CustomerArg,
        /// A name to tell keys apart, e.g. "claude-desktop".
        #[arg(long, default_value = "default")]
        name: String,
    },
    /// List a customer's keys (never the keys themselves).
    List {
        #[command(flatten)]
        customer: CustomerArg,
    },
    /// Revoke a key by its id (key_…); it stops working at once.
    Revoke {
        #[command(flatten)]
        customer: CustomerArg,
        /// Key id (key_…), as shown by `api-keys list`.
        #[arg(long)]
        key: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum CredentialsCommand {
    /// Store credentials from a JSON document on stdin, e.g. {"bot_token": "…"} for telegram.
    Set {
        #[command(flatten)]
        customer: CustomerArg,
        #[arg(long)]
        platform: String,
        /// Account name, for customers with several accounts on one platform.
        #[arg(long, default_value = "default")]
        account: String,
    },
    /// List stored credentials (never their secrets).
    List {
        #[command(flatten)]
        customer: CustomerArg,
    },
    /// Delete stored credentials.
    Delete {
        #[command(flatten)]
        customer: CustomerArg,
        #[arg(long)]
        platform: String,
        #[arg(long, default_value = "default")]
        account: String,
    },
    /// Check the health of a customer's connections now (each platform's health probe) and
    /// show ok, expiring, needs_reconnect, failing (with the reason) or unchecked.
    Check {
        #[command(flatten)]
        customer: CustomerArg,
        /// Only this platform's connections.
        #[arg(long)]
        platform: Option<String>,
    },
    /// Make a new data key the one new credentials are sealed with. Old records still open;
    /// run `credentials rewrap` next to move them to the new key.
    #[command(name = "rotate-key")]
    RotateKey,
    /// Re-encrypt every stored credential under the active data key, while the gateway runs.
    Rewrap,
}
