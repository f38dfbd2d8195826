//! Sends mail over SMTP. `SQUAREMCP_SMTP_URL` picks the server and security:
//! `smtp://127.0.0.1:2525` (plain, for a local relay), `smtp://user:pass@host:587?tls=required`
//! (STARTTLS) or `smtps://user:pass@host:465` (implicit TLS).

use async_trait::async_trait;
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use squaremcp_core::{MailError, Mailer, OutgoingEmail};

pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

#[derive(Debug, thiserror::Error)]
pub enum MailConfigError {
    #[error("SQUAREMCP_SMTP_URL is not a usable SMTP URL ({0}); expected e.g. smtp://127.0.0.1:2525 or smtps://user:pass@host:465")]
    Url(String),
    #[error("SQUAREMCP_MAIL_FROM is not a mailbox like `SquareMCP <billing@example.com>`: {0}")]
    From(String),
}

impl SmtpMailer {
    pub fn new(url: &str, from: &str) -> Result<Self, MailConfigError> {
        // lettre's messages can echo the URL, and the URL may hold a password: never show them.
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|_| MailConfigError::Url("it could not be parsed".into()))?
            .build();
        let from = from.parse::<Mailbox>().map_err(|e| MailConfigError::From(e.to_string()))?;
        Ok(Self { transport, from })
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, email: &OutgoingEmail) -> Result<(), MailError> {
        let to = email.to.parse::<Mailbox>().map_err(|e| MailError::Rejected(format!("bad recipient: {e}")))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(&email.subject)
            .message_id(Some(email.message_id.clone()))
            .multipart(
                MultiPart::alternative()
                    .singlepart(SinglePart::builder().header(ContentType::TEXT_PLAIN).body(email.text.clone()))
                    .singlepart(SinglePart::builder().header(ContentType::TEXT_HTML).body(email.html.clone())),
            )
            .map_err(|e| MailError::Rejected(e.to_string()))?;
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(MailError::Rejected(e.to_string())),
            Err(e) => Err(MailError::Unavailable(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_errors_are_clear_and_never_echo_the_url() {
        let bad = SmtpMailer::new("http://user:hunter2@host", "a@b.c").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(bad.contains("not a usable SMTP URL") && !bad.contains("hunter2"), "{bad}");
        assert!(matches!(SmtpMailer::new("smtp://127.0.0.1:2525", "not a mailbox"), Err(MailConfigError::From(_))));
        assert!(SmtpMailer::new("smtp://127.0.0.1:2525", "SquareMCP <billing@example.com>").is_ok());
    }

    #[tokio::test]
    async fn an_unreachable_server_is_a_temporary_failure() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(1);
        let mailer = SmtpMailer::new(&format!("smtp://127.0.0.1:{port}"), "billing@example.com").expect("valid");
        let email = OutgoingEmail {
            to: "ada@example.com".into(),
            subject: "s".into(),
            text: "t".into(),
            html: "<p>h</p>".into(),
            message_id: "<1@test>".into(),
        };
        assert!(matches!(mailer.send(&email).await, Err(MailError::Unavailable(_))));
    }
}
