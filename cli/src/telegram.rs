//! `squaremcp telegram webhook on|off|status`: switches a customer's Telegram bot between
//! polling (`telegram_get_updates` calls `getUpdates`) and webhook mode (Telegram posts updates
//! to `/webhooks/telegram/<bot id>`, which buffers them for `telegram_get_updates` and sends
//! them out as `telegram.update` events). The secret token given to Telegram is never printed.

use clap::{Args, Subcommand};
use serde_json::{Value, json};
use squaremcp_core::routing::RouteOwner;
use squaremcp_core::{AccountName, CustomerId, Gateway, Platform, Secret};
use squaremcp_platforms::kit::PlatformContext;
use squaremcp_platforms::telegram::{self, webhook};
use squaremcp_runtime::{Backends, Config};

use crate::admin::CliError;
use crate::args::CustomerArg;
use crate::output::Printer;

#[derive(Subcommand, Debug)]
pub enum TelegramCommand {
    /// A bot's webhook mode.
    #[command(subcommand)]
    Webhook(WebhookCommand),
}

#[derive(Subcommand, Debug)]
pub enum WebhookCommand {
    /// Switch the bot to webhook mode: Telegram posts its updates to the gateway
    /// (SQUAREMCP_PUBLIC_URL/webhooks/telegram/<bot id>, which must be HTTPS for Telegram).
    On {
        #[command(flatten)]
        bot: BotArgs,
        /// Update kinds to receive, comma-separated [default: Telegram's default set]
        #[arg(long, value_delimiter = ',')]
        allowed_updates: Vec<String>,
    },
    /// Back to polling: Telegram's webhook is deleted; updates already received stay readable.
    Off {
        #[command(flatten)]
        bot: BotArgs,
    },
    /// Whether the bot is in webhook mode here.
    Status {
        #[command(flatten)]
        bot: BotArgs,
    },
}

#[derive(Args, Debug)]
pub struct BotArgs {
    #[command(flatten)]
    pub customer: CustomerArg,
    /// The Telegram account (credential name).
    #[arg(long, default_value = "default")]
    pub account: String,
}

pub async fn run(
    config: &Config,
    backends: &Backends,
    gateway: &Gateway,
    command: TelegramCommand,
    out: Printer,
) -> Result<(), CliError> {
    let TelegramCommand::Webhook(command) = command;
    let bot = match &command {
        WebhookCommand::On { bot, .. }
        | WebhookCommand::Off { bot }
        | WebhookCommand::Status { bot } => bot,
    };
    let owner = RouteOwner {
        customer_id: CustomerId::parse(&bot.customer.customer)?,
        account: AccountName::parse(&bot.account)?,
    };
    gateway.require_customer(&owner.customer_id).await?;
    let credential = credential(backends, &owner).await?;
    let bot_id = webhook::bot_id_of(credential.expose()).ok_or_else(|| {
        CliError::Usage(
            "the stored Telegram credential has no usable bot token; store it again".into(),
        )
    })?;
    let origin = config
        .platform_base_urls
        .get(&Platform::Telegram)
        .cloned()
        .unwrap_or_else(|| telegram::DEFAULT_BASE_URL.to_owned());
    let mut context = PlatformContext::new(squaremcp_platforms::http_client(), origin);
    context.network = config.network.clone();
    let (store, clock) = (backends.store.as_ref(), backends.clock.as_ref());
    match command {
        WebhookCommand::On {
            allowed_updates, ..
        } => {
            let on = webhook::SwitchOn {
                context: &context,
                store,
                clock,
                owner: &owner,
                public_url: &config.public_url,
                allowed_updates: &allowed_updates,
            };
            let hook = webhook::switch_on(on, &credential)
                .await
                .map_err(|e| CliError::Usage(e.to_string()))?;
            out.print(&hook_json(&bot_id, Some(&hook)), || {
                format!(
                    "Bot {bot_id} is in webhook mode: Telegram posts its updates to {} ({}).",
                    hook.url,
                    if hook.allowed_updates.is_empty() {
                        "Telegram's default update kinds".to_owned()
                    } else {
                        hook.allowed_updates.join(",")
                    }
                )
            });
        }
        WebhookCommand::Off { .. } => {
            let was_on = webhook::switch_off(&context, store, clock, &owner, &credential)
                .await
                .map_err(|e| CliError::Usage(e.to_string()))?;
            out.print(
                &json!({"bot_id": bot_id, "webhook": false, "was_on": was_on}),
                || {
                    format!(
                        "Bot {bot_id} is back to polling{}.",
                        if was_on {
                            ""
                        } else {
                            " (it was not in webhook mode here)"
                        }
                    )
                },
            );
        }
        WebhookCommand::Status { .. } => {
            let hook = webhook::hook(store, &bot_id, clock.now())
                .await?
                .filter(|h| h.owner == owner);
            out.print(&hook_json(&bot_id, hook.as_ref()), || match &hook {
                Some(hook) => format!(
                    "Bot {bot_id}: webhook mode since {}, {}.",
                    hook.since.to_rfc3339(),
                    hook.url
                ),
                None => format!("Bot {bot_id}: polling (no webhook set by this gateway)."),
            });
        }
    }
    Ok(())
}

/// The customer's stored Telegram credential for the account, opened.
async fn credential(backends: &Backends, owner: &RouteOwner) -> Result<Secret<Value>, CliError> {
    let records = backends
        .store
        .credentials(&owner.customer_id, Some(Platform::Telegram))
        .await?;
    let record = records
        .into_iter()
        .find(|r| r.account == owner.account)
        .ok_or_else(|| {
            CliError::Usage(format!(
                "{} has no telegram credentials named {:?}",
                owner.customer_id,
                owner.account.as_str()
            ))
        })?;
    let opened = record
        .open(backends.keyring.as_ref())
        .await
        .map_err(|e| {
            CliError::Usage(format!(
                "the stored Telegram credential cannot be opened: {e}"
            ))
        })?;
    let document = serde_json::from_slice(opened.expose()).map_err(|_| {
        CliError::Usage(
            "the stored Telegram credential is not a JSON document; store it again".into(),
        )
    })?;
    Ok(Secret::new(document))
}

fn hook_json(bot_id: &str, hook: Option<&webhook::Hook>) -> Value {
    match hook {
        Some(hook) => json!({
            "bot_id": bot_id, "webhook": true, "url": hook.url, "allowed_updates": hook.allowed_updates,
            "since": hook.since.to_rfc3339(),
        }),
        None => json!({"bot_id": bot_id, "webhook": false}),
    }
}
