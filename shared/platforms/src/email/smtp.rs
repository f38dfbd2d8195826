//! The SMTP side: messages built with lettre (also for drafts) and sent to the customer's
//! submission server, connected at the address the SSRF guard resolved.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::AsyncSmtpTransport;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{Address, AsyncTransport as _, Message, Tokio1Executor};
use sha2::{Digest, Sha256};
use squaremcp_core::tool::{FailureKind, ToolFailure};

use super::credential::{Account, Secret, Security};
use super::imap::{CALL_TIMEOUT, check_plaintext, guard_failure};
use crate::kit::NetworkPolicy;

/// What a message is made of, from the tool's arguments.
#[derive(Default)]
pub(super) struct Draft {
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub bcc: Vec<String>,
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
    pub in_reply_to: Option<String>,
    pub references: Option<String>,
}

/// Builds the RFC 5322 message. `keep_bcc` keeps the Bcc header (drafts); a sent message never
/// carries it. A draft without recipients is addressed to nobody (its envelope is never used).
pub(super) fn build(account: &Account, draft: &Draft, keep_bcc: bool) -> Result<(Message, String), ToolFailure> {
    let mailbox = |field: &str, text: &String| -> Result<Mailbox, ToolFailure> {
        text.parse::<Mailbox>().map_err(|_| ToolFailure::invalid_arguments(format!("`{field}` holds an entry that is not an email address")))
    };
    let id = new_message_id(account);
    let mut builder = Message::builder()
        .from(Mailbox::new(None, account.address.clone()))
        .subject(draft.subject.clone())
        .message_id(Some(id.clone()));
    for to in &draft.to {
        builder = builder.to(mailbox("to", to)?);
    }
    for cc in &draft.cc {
        builder = builder.cc(mailbox("cc", cc)?);
    }
    for bcc in &draft.bcc {
        builder = builder.bcc(mailbox("bcc", bcc)?);
    }
    for (field, value) in [("in_reply_to", &draft.in_reply_to), ("references", &draft.references)] {
        if let Some(value) = value {
            if !value.contains('<') || value.contains(['\r', '\n']) {
                return Err(ToolFailure::invalid_arguments(format!("`{field}` must be message ids like <abc@example.com>")));
            }
            let name = if field == "in_reply_to" { "In-Reply-To" } else { "References" };
            builder = builder.raw_header(HeaderValue::new(HeaderName::new_from_ascii_str(name), value.clone()));
        }
    }
    if keep_bcc {
        builder = builder.keep_bcc();
    }
    if draft.to.is_empty() && draft.cc.is_empty() && draft.bcc.is_empty() {
        let envelope = lettre::address::Envelope::new(Some(account.address.clone()), vec![account.address.clone()])
            .map_err(|_| ToolFailure::invalid_arguments("the message needs at least one recipient"))?;
        builder = builder.envelope(envelope);
    }
    let message = match &draft.html {
        Some(html) => builder.multipart(MultiPart::alternative_plain_html(draft.text.clone(), html.clone())),
        None => builder.singlepart(SinglePart::builder().header(ContentType::TEXT_PLAIN).body(draft.text.clone())),
    }
    .map_err(|e| ToolFailure::invalid_arguments(format!("The message cannot be built: {e}.")))?;
    Ok((message, id))
}

/// `<random@the sender's domain>`.
fn new_message_id(account: &Account) -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
    let mut hasher = Sha256::new();
    hasher.update(nanos.to_be_bytes());
    hasher.update(std::process::id().to_be_bytes());
    hasher.update(account.address.to_string().as_bytes());
    hasher.update(format!("{:p}", &nanos).as_bytes());
    let digest = hasher.finalize();
    let random: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("<{random}@{}>", account.address.domain())
}

/// Sends `message` through the account's SMTP server; the recipients the server accepted.
pub(super) async fn send(account: &Account, network: &NetworkPolicy, message: &Message) -> Result<Vec<String>, ToolFailure> {
    let server = &account.smtp;
    check_plaintext("SMTP", server, network)?;
    let address = network.resolve(&server.host, server.port).await.map_err(|e| guard_failure("SMTP", &e))?;
    let host = server.host.trim_start_matches('[').trim_end_matches(']').to_owned();
    let tls = || -> Result<TlsParameters, ToolFailure> {
        let mut parameters = TlsParameters::builder(host.clone());
        for root in network.extra_roots() {
            let certificate = Certificate::from_der(root.to_vec())
                .map_err(|_| ToolFailure::new(FailureKind::Upstream, "SQUAREMCP_EXTRA_CA_FILE holds a certificate the SMTP client refuses."))?;
            parameters = parameters.add_root_certificate(certificate);
        }
        parameters
            .build()
            .map_err(|_| ToolFailure::new(FailureKind::Upstream, "The gateway's TLS configuration for SMTP could not be built."))
    };
    let tls = match server.security {
        Security::Tls => Tls::Wrapper(tls()?),
        Security::StartTls => Tls::Required(tls()?),
        Security::None => Tls::None,
    };
    // The resolved address, not the name: no second lookup. TLS still checks the name.
    let (credentials, mechanisms) = match &account.secret {
        Secret::Password(password) => (Credentials::new(account.username.clone(), password.clone()), vec![Mechanism::Plain, Mechanism::Login]),
        Secret::OAuth2 { access_token, .. } => (Credentials::new(account.username.clone(), access_token.clone()), vec![Mechanism::Xoauth2]),
    };
    let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(address.ip().to_string())
        .port(address.port())
        .tls(tls)
        .credentials(credentials)
        .authentication(mechanisms)
        .timeout(Some(Duration::from_secs(20)))
        .build();
    let recipients: Vec<String> = message.envelope().to().iter().map(Address::to_string).collect();
    match tokio::time::timeout(CALL_TIMEOUT, transport.send(message.clone())).await {
        Err(_) => Err(ToolFailure::new(FailureKind::UpstreamTransient, "The SMTP server did not answer in time; the message may not have been sent.")),
        Ok(Ok(_)) => Ok(recipients),
        Ok(Err(error)) => Err(smtp_failure(&error, matches!(account.secret, Secret::OAuth2 { .. }))),
    }
}

/// Gmail refuses an XOAUTH2 token with a `334 <base64 JSON error>` challenge (the client is to
/// answer with an empty line, then comes 535). lettre's XOAUTH2 answers no challenge: it gives up
/// with a client error that carries no reply code, which would otherwise read as "could not talk
/// to the server". After an XOAUTH2 initial response, that challenge can only be the refusal.
fn refused_with_a_challenge(error: &lettre::transport::smtp::Error) -> bool {
    error.is_client() && error.to_string().contains("does not expect a challenge")
}

/// The server advertises none of the mechanisms offered to lettre (also when it offers no AUTH).
fn offers_no_usable_mechanism(error: &lettre::transport::smtp::Error) -> bool {
    error.is_client() && error.to_string().contains("No compatible authentication mechanism")
}

/// An SMTP error as a tool failure, by its reply code (RFC 5321, RFC 3463).
fn smtp_failure(error: &lettre::transport::smtp::Error, oauth: bool) -> ToolFailure {
    let code = error.status().map(|code| code.to_string());
    tracing::info!(code = code.as_deref().unwrap_or("none"), timeout = error.is_timeout(), tls = error.is_tls(), "the SMTP server refused");
    let (kind, message) = match code.as_deref() {
        None if oauth && refused_with_a_challenge(error) => {
            (FailureKind::AuthExpired, "The SMTP server refused the OAuth access token. Connect the account again.")
        }
        None if offers_no_usable_mechanism(error) => (
            FailureKind::PermissionMissing,
            if oauth {
                "The SMTP server does not offer SASL XOAUTH2, the only way the gateway signs in with an OAuth token."
            } else {
                "The SMTP server offers neither AUTH PLAIN nor AUTH LOGIN, the ways the gateway signs in with a password."
            },
        ),
        Some("535" | "534") if oauth => (FailureKind::AuthExpired, "The SMTP server refused the OAuth access token. Connect the account again."),
        Some("535" | "534") => (
            FailureKind::AuthRevoked,
            "The SMTP server refused the username or password. Check them and store the credential again; Gmail and \
             Microsoft 365 need an app password (or OAuth).",
        ),
        Some("530" | "538") => (FailureKind::PermissionMissing, "The SMTP server requires stronger security or authentication for this account."),
        Some("421" | "450" | "451" | "452") => (FailureKind::UpstreamTransient, "The SMTP server is busy or throttling; nothing was sent. Try again later."),
        Some("550" | "551" | "553" | "501") => (FailureKind::InvalidInput, "The SMTP server rejected a recipient or the sender address; nothing was sent."),
        Some("552") => (FailureKind::QuotaExhausted, "The SMTP server refused the message size or the account's sending quota is used up."),
        Some("554") => (FailureKind::Upstream, "The SMTP server refused the message by policy (spam or sending rules)."),
        _ if error.is_tls() => (
            FailureKind::Upstream,
            "The TLS handshake with the SMTP server failed. Check the host and security setting; a private CA needs the operator \
             to trust it (SQUAREMCP_EXTRA_CA_FILE).",
        ),
        _ if error.is_timeout() || error.is_transient() || error.status().is_none() => {
            (FailureKind::UpstreamTransient, "The gateway could not talk to the SMTP server; nothing was sent. Try again shortly.")
        }
        _ => (FailureKind::Upstream, "The SMTP server refused the message."),
    };
    ToolFailure::new(kind, message)
}
