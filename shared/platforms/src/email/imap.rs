//! The IMAP side: a short-lived session per call over the SSRF guard's address and rustls
//! (async-imap on tokio), folders by SPECIAL-USE with the usual fallbacks, modified UTF-7 names,
//! commands with literals (UTF-8 search terms, APPEND with its APPENDUID), opaque message ids.

use std::collections::HashSet;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use async_imap::imap_proto::rfc4315::UidSetMember;
use async_imap::imap_proto::{MailboxDatum, Response, ResponseCode, Status};
use async_imap::types::NameAttribute;
use base64::Engine as _;
use futures_util::TryStreamExt as _;
use squaremcp_core::tool::{FailureKind, ToolFailure};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::ClientConfig;
use tokio_rustls::rustls::pki_types::ServerName;

use super::credential::{Account, Secret, Security, Server};
use crate::kit::{GuardError, NetworkPolicy};

/// Connecting (TCP and TLS) may take this long.
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A whole call (connect, log in, act, log out) must end well inside a Lambda's limit.
pub(super) const CALL_TIMEOUT: Duration = Duration::from_secs(25);

/// Any byte stream a session can run on (TCP, or TLS over TCP).
pub(super) trait Stream: AsyncRead + AsyncWrite + Unpin + Send + Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Debug> Stream for T {}

pub(super) type Session = async_imap::Session<Box<dyn Stream>>;

/// A logged-in session and what the server said it can do (upper case).
pub(super) struct Imap {
    pub session: Session,
    pub capabilities: HashSet<String>,
    /// Names this mailbox in the message ids it issues (see [`mailbox_tag`]).
    pub mailbox: String,
}

/// The failure for a customer-supplied host the guard refused, or could not resolve.
pub(super) fn guard_failure(what: &str, error: &GuardError) -> ToolFailure {
    let kind = match error {
        GuardError::Forbidden { .. } => FailureKind::Forbidden,
        GuardError::InvalidHost { .. } => FailureKind::NotConfigured,
        GuardError::Unresolved { .. } => FailureKind::UpstreamTransient,
    };
    ToolFailure::new(kind, format!("The {what} server cannot be used: {error}."))
}

/// Refuses plaintext unless the operator allows private hosts (where a plaintext test or
/// internal server is plausible): a password must not cross the internet in the clear.
pub(super) fn check_plaintext(what: &str, server: &Server, network: &NetworkPolicy) -> Result<(), ToolFailure> {
    if server.security == Security::None && !network.allows_private_hosts() {
        return Err(ToolFailure::new(
            FailureKind::Forbidden,
            format!(
                "The stored credential asks for a plaintext {what} connection (`none`), which this gateway refuses: \
                 store it again with `tls` or `starttls`."
            ),
        ));
    }
    Ok(())
}

/// The rustls configuration for customer servers, or the failure saying it cannot be built.
pub(super) fn tls_config(network: &NetworkPolicy) -> Result<Arc<ClientConfig>, ToolFailure> {
    network.tls_config().map_err(|e| {
        tracing::error!(error = %e, "the TLS configuration for mail servers could not be built");
        ToolFailure::new(FailureKind::Upstream, "The gateway's TLS configuration is broken; an administrator must check SQUAREMCP_EXTRA_CA_FILE.")
    })
}

fn unreachable_failure(what: &str) -> ToolFailure {
    ToolFailure::new(FailureKind::UpstreamTransient, format!("The gateway could not connect to the {what} server. Try again shortly."))
}

fn tls_failure(what: &str, error: &std::io::Error) -> ToolFailure {
    tracing::info!(error = %error, "TLS with a mail server failed");
    ToolFailure::new(
        FailureKind::Upstream,
        format!(
            "The TLS handshake with the {what} server failed ({error}). Check the host name and security setting; a server \
             with a certificate from a private CA needs the operator to trust it (SQUAREMCP_EXTRA_CA_FILE)."
        ),
    )
}

/// Connects to the account's IMAP server through the guard, protects the connection as the
/// credential says and logs in.
pub(super) async fn connect(account: &Account, network: &NetworkPolicy) -> Result<Imap, ToolFailure> {
    let server = &account.imap;
    check_plaintext("IMAP", server, network)?;
    let address = network.resolve(&server.host, server.port).await.map_err(|e| guard_failure("IMAP", &e))?;
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(address))
        .await
        .map_err(|_| unreachable_failure("IMAP"))?
        .map_err(|_| unreachable_failure("IMAP"))?;
    let stream: Box<dyn Stream> = match server.security {
        Security::Tls => Box::new(tls(tcp, &server.host, network).await?),
        Security::None => Box::new(tcp),
        Security::StartTls => {
            let mut client = async_imap::Client::new(tcp);
            greeting(&mut client).await?;
            client.run_command_and_check_ok("STARTTLS", None).await.map_err(|e| {
                ToolFailure::new(FailureKind::Upstream, format!("The IMAP server refused STARTTLS ({}); try `tls` on port 993.", short(&e)))
            })?;
            Box::new(tls(client.into_inner(), &server.host, network).await?)
        }
    };
    let mut client = async_imap::Client::new(stream);
    if server.security != Security::StartTls {
        greeting(&mut client).await?;
    }
    let session = match &account.secret {
        Secret::Password(password) => client.login(&account.username, password).await.map_err(|(e, _)| login_failure(&e, false))?,
        Secret::OAuth2 { access_token, .. } => {
            let auth = XOAuth2 { user: account.username.clone(), token: access_token.clone() };
            client.authenticate("XOAUTH2", auth).await.map_err(|(e, _)| login_failure(&e, true))?
        }
    };
    let mut imap = Imap { session, capabilities: HashSet::new(), mailbox: mailbox_tag(account) };
    let capabilities = imap.session.capabilities().await.map_err(|e| failure("CAPABILITY", &e))?;
    imap.capabilities = capabilities.iter().filter_map(capability_name).collect();
    Ok(imap)
}

fn capability_name(capability: &async_imap::types::Capability) -> Option<String> {
    use async_imap::types::Capability;
    match capability {
        Capability::Imap4rev1 => Some("IMAP4REV1".to_owned()),
        Capability::Auth(name) => Some(format!("AUTH={}", name.to_ascii_uppercase())),
        Capability::Atom(name) => Some(name.to_ascii_uppercase()),
    }
}

async fn tls(tcp: TcpStream, host: &str, network: &NetworkPolicy) -> Result<tokio_rustls::client::TlsStream<TcpStream>, ToolFailure> {
    let bare = host.trim_start_matches('[').trim_end_matches(']').to_owned();
    let name = ServerName::try_from(bare).map_err(|_| {
        ToolFailure::new(FailureKind::NotConfigured, "The stored mail server host is not a valid TLS server name. Store the credential again.")
    })?;
    let connector = TlsConnector::from(tls_config(network)?);
    tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(name, tcp))
        .await
        .map_err(|_| unreachable_failure("IMAP"))?
        .map_err(|e| tls_failure("IMAP", &e))
}

async fn greeting<T: Stream>(client: &mut async_imap::Client<T>) -> Result<(), ToolFailure> {
    match client.read_response().await {
        Ok(Some(response)) if !matches!(response.parsed(), Response::Data { status: Status::Bye, .. }) => Ok(()),
        _ => Err(ToolFailure::new(FailureKind::UpstreamTransient, "The IMAP server closed the connection before greeting. Try again shortly.")),
    }
}

/// SASL XOAUTH2 (Gmail, Microsoft 365): `user=…^Aauth=Bearer …^A^A`.
struct XOAuth2 {
    user: String,
    token: String,
}

impl async_imap::Authenticator for XOAuth2 {
    type Response = String;
    fn process(&mut self, _challenge: &[u8]) -> Self::Response {
        format!("user={}\x01auth=Bearer {}\x01\x01", self.user, self.token)
    }
}

fn login_failure(error: &async_imap::error::Error, oauth: bool) -> ToolFailure {
    use async_imap::error::Error;
    match error {
        Error::No(_) | Error::Bad(_) if oauth => ToolFailure::new(
            FailureKind::AuthExpired,
            "The IMAP server refused the OAuth access token (expired or revoked). Connect the account again to store a fresh one.",
        ),
        Error::No(_) | Error::Bad(_) => ToolFailure::new(
            FailureKind::AuthRevoked,
            "The IMAP server refused the username or password. Check them and store the credential again; Gmail and \
             Microsoft 365 need an app password (or OAuth), not the account password.",
        ),
        other => failure("LOGIN", other),
    }
}

/// An IMAP error as a tool failure. Server texts are not quoted whole: only the response code.
pub(super) fn failure(operation: &str, error: &async_imap::error::Error) -> ToolFailure {
    use async_imap::error::Error;
    match error {
        Error::No(text) | Error::Bad(text) => {
            let code = text.split("code: ").nth(1).and_then(|rest| rest.split(',').next()).unwrap_or("None");
            let (kind, what) = if code.contains("OverQuota") || text.contains("OVERQUOTA") {
                (FailureKind::QuotaExhausted, "the mailbox is over its quota")
            } else if code.contains("TryCreate") || text.contains("TRYCREATE") || text.contains("NONEXISTENT") {
                (FailureKind::NotFound, "that folder does not exist (email_list_folders lists them)")
            } else if matches!(error, Error::Bad(_)) {
                (FailureKind::InvalidInput, "it did not accept the request")
            } else {
                (FailureKind::Upstream, "it refused the request")
            };
            tracing::info!(operation, code, "the IMAP server refused a command");
            ToolFailure::new(kind, format!("The IMAP server answered {operation} with an error: {what}."))
        }
        Error::ConnectionLost | Error::Io(_) => {
            ToolFailure::new(FailureKind::UpstreamTransient, format!("The connection to the IMAP server broke during {operation}. Try again shortly."))
        }
        other => {
            tracing::info!(operation, error = %short(other), "unexpected IMAP answer");
            ToolFailure::new(FailureKind::Upstream, format!("The IMAP server answered {operation} in a way the gateway does not understand."))
        }
    }
}

fn short(error: &async_imap::error::Error) -> String {
    error.to_string().chars().take(120).collect()
}

/// Logs out, ignoring failures: the call's result is already known.
pub(super) async fn close(mut imap: Imap) {
    let _ = tokio::time::timeout(Duration::from_secs(2), imap.session.logout()).await;
}

// Folders.

/// A folder as LIST shows it, its name decoded.
pub(super) struct Folder {
    /// As the server spells it (modified UTF-7): what commands use.
    pub raw: String,
    pub name: String,
    pub delimiter: Option<String>,
    pub attributes: Vec<String>,
    pub special_use: Option<&'static str>,
    pub selectable: bool,
}

pub(super) async fn list_folders(imap: &mut Imap) -> Result<Vec<Folder>, ToolFailure> {
    let names: Vec<_> = imap
        .session
        .list(Some(""), Some("*"))
        .await
        .map_err(|e| failure("LIST", &e))?
        .try_collect()
        .await
        .map_err(|e| failure("LIST", &e))?;
    let folders = names
        .iter()
        .map(|name| {
            let mut special_use = None;
            let mut selectable = true;
            let attributes = name
                .attributes()
                .iter()
                .map(|attribute| {
                    let (text, special) = match attribute {
                        NameAttribute::NoInferiors => ("\\Noinferiors".to_owned(), None),
                        NameAttribute::NoSelect => {
                            selectable = false;
                            ("\\Noselect".to_owned(), None)
                        }
                        NameAttribute::Marked => ("\\Marked".to_owned(), None),
                        NameAttribute::Unmarked => ("\\Unmarked".to_owned(), None),
                        NameAttribute::All => ("\\All".to_owned(), Some("all")),
                        NameAttribute::Archive => ("\\Archive".to_owned(), Some("archive")),
                        NameAttribute::Drafts => ("\\Drafts".to_owned(), Some("drafts")),
                        NameAttribute::Flagged => ("\\Flagged".to_owned(), Some("flagged")),
                        NameAttribute::Junk => ("\\Junk".to_owned(), Some("junk")),
                        NameAttribute::Sent => ("\\Sent".to_owned(), Some("sent")),
                        NameAttribute::Trash => ("\\Trash".to_owned(), Some("trash")),
                        NameAttribute::Extension(other) => {
                            if other.eq_ignore_ascii_case("\\NonExistent") {
                                selectable = false;
                            }
                            (other.to_string(), None)
                        }
                        _ => (String::new(), None),
                    };
                    special_use = special_use.or(special);
                    text
                })
                .filter(|text| !text.is_empty())
                .collect();
            Folder {
                raw: name.name().to_owned(),
                name: utf7::decode(name.name()),
                delimiter: name.delimiter().map(str::to_owned),
                attributes,
                special_use,
                selectable,
            }
        })
        .collect();
    Ok(folders)
}

/// The folder for `role` (`drafts`, `sent`): by SPECIAL-USE, else by the usual names.
pub(super) async fn special_folder(imap: &mut Imap, role: &'static str) -> Result<Option<String>, ToolFailure> {
    let folders = list_folders(imap).await?;
    if let Some(folder) = folders.iter().find(|f| f.special_use == Some(role) && f.selectable) {
        return Ok(Some(folder.raw.clone()));
    }
    let fallbacks: &[&str] = match role {
        "drafts" => &["Drafts", "INBOX.Drafts", "INBOX/Drafts", "[Gmail]/Drafts", "Draft", "Brouillons", "Entwürfe"],
        _ => &["Sent", "INBOX.Sent", "INBOX/Sent", "Sent Items", "Sent Messages", "Sent Mail", "[Gmail]/Sent Mail", "Gesendet"],
    };
    Ok(fallbacks
        .iter()
        .find_map(|wanted| folders.iter().find(|f| f.selectable && f.name.eq_ignore_ascii_case(wanted)))
        .map(|f| f.raw.clone()))
}

/// A folder name as the model gave it (decoded), as the server spells it.
pub(super) fn mailbox(name: &str) -> Result<String, ToolFailure> {
    if name.is_empty() || name.contains(['\r', '\n', '\0']) {
        return Err(ToolFailure::invalid_arguments("`folder` must be a folder name from email_list_folders"));
    }
    Ok(if name.eq_ignore_ascii_case("INBOX") { "INBOX".to_owned() } else { utf7::encode(name) })
}

/// `"name"` with IMAP's quoting (the name is ASCII after modified UTF-7).
pub(super) fn quoted(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

// Commands with literals.

/// A piece of a command: text as it is, or a string sent as a literal (`{n}` then the bytes).
pub(super) enum Piece {
    Text(String),
    Literal(Vec<u8>),
}

/// What a command answered: its untagged responses of interest, and the tagged OK's code.
#[derive(Default)]
pub(super) struct Answer {
    pub search: Vec<u32>,
    pub append_uid: Option<(u32, u32)>,
}

/// Runs a command made of `pieces`, sending each literal after the server's continuation (or at
/// once as `{n+}` when it offers LITERAL+), and reads until its tagged answer.
pub(super) async fn command(imap: &mut Imap, operation: &str, pieces: Vec<Piece>) -> Result<Answer, ToolFailure> {
    use async_imap::error::Error;
    let plus = imap.capabilities.contains("LITERAL+");
    let io = |e: std::io::Error| failure(operation, &Error::Io(e));
    // Split into lines: each ends with a literal's announcement, the last with nothing.
    let mut lines: Vec<(String, Option<Vec<u8>>)> = vec![(String::new(), None)];
    for piece in pieces {
        match piece {
            Piece::Text(text) => {
                if let Some(last) = lines.last_mut() {
                    last.0.push_str(&text);
                }
            }
            Piece::Literal(bytes) => {
                if let Some(last) = lines.last_mut() {
                    last.0.push_str(&format!("{{{}{}}}", bytes.len(), if plus { "+" } else { "" }));
                    last.1 = Some(bytes);
                }
                lines.push((String::new(), None));
            }
        }
    }
    let mut lines = lines.into_iter();
    let Some((first, mut literal)) = lines.next() else { return Ok(Answer::default()) };
    let tag = imap.session.run_command(&first).await.map_err(|e| failure(operation, &e))?;
    let mut answer = Answer::default();
    while let Some(bytes) = literal.take() {
        if !plus {
            loop {
                let response = imap.session.read_response().await.map_err(io)?.ok_or_else(|| failure(operation, &Error::ConnectionLost))?;
                match response.parsed() {
                    Response::Continue(_) => break,
                    Response::Done { tag: done, status, outcome } if *done == tag => {
                        return Err(status_failure(operation, status, outcome.code.as_ref()));
                    }
                    other => collect(&mut answer, other),
                }
            }
        }
        let (next, following) = lines.next().unwrap_or_default();
        let stream = imap.session.as_mut();
        stream.write_all(&bytes).await.map_err(io)?;
        stream.write_all(next.as_bytes()).await.map_err(io)?;
        stream.write_all(b"\r\n").await.map_err(io)?;
        stream.flush().await.map_err(io)?;
        literal = following;
    }
    loop {
        let response = imap.session.read_response().await.map_err(io)?.ok_or_else(|| failure(operation, &Error::ConnectionLost))?;
        match response.parsed() {
            Response::Done { tag: done, status, outcome } if *done == tag => {
                if *status != Status::Ok {
                    return Err(status_failure(operation, status, outcome.code.as_ref()));
                }
                if let Some(ResponseCode::AppendUid(validity, uids)) = &outcome.code
                    && let Some(UidSetMember::Uid(uid)) = uids.first()
                {
                    answer.append_uid = Some((*validity, *uid));
                }
                return Ok(answer);
            }
            other => collect(&mut answer, other),
        }
    }
}

fn collect(answer: &mut Answer, response: &Response<'_>) {
    if let Response::MailboxData(MailboxDatum::Search(uids)) = response {
        answer.search.extend(uids);
    }
}

fn status_failure(operation: &str, status: &Status, code: Option<&ResponseCode<'_>>) -> ToolFailure {
    use async_imap::error::Error;
    let text = format!("code: {code:?}, info: None");
    let text = match code {
        Some(ResponseCode::TryCreate) => "code: TRYCREATE".to_owned(),
        _ => text,
    };
    let error = if *status == Status::Bad { Error::Bad(text) } else { Error::No(text) };
    failure(operation, &error)
}

/// A search or APPEND string: quoted when plain ASCII, else a literal.
pub(super) fn astring(text: &str) -> Piece {
    if text.is_ascii() && !text.contains(['\r', '\n', '\0']) && text.len() < 1000 {
        Piece::Text(quoted(text))
    } else {
        Piece::Literal(text.as_bytes().to_vec())
    }
}

/// APPENDs `message` to `folder` with `flags`; the new UID when the server reports it (UIDPLUS).
pub(super) async fn append(imap: &mut Imap, folder: &str, flags: &str, message: Vec<u8>) -> Result<Option<(u32, u32)>, ToolFailure> {
    let pieces = vec![Piece::Text(format!("APPEND {} ({flags}) ", quoted(folder))), Piece::Literal(message)];
    Ok(command(imap, "APPEND", pieces).await?.append_uid)
}

// Message ids: (mailbox, folder, UIDVALIDITY, UID) in one opaque string. UIDVALIDITY is often a
// timestamp, so two mailboxes created in the same second share it: without the mailbox in the
// id, an id from one account would read another message in the other.

const ID_PREFIX: &str = "m2.";

/// A short, stable digest of the account's login and IMAP server: ids carry it, not the address.
pub(super) fn mailbox_tag(account: &Account) -> String {
    use sha2::{Digest as _, Sha256};
    let digest = Sha256::digest(format!("{}\0{}:{}", account.username.to_lowercase(), account.imap.host.to_lowercase(), account.imap.port));
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..6])
}

pub(super) fn message_id(tag: &str, folder: &str, uidvalidity: u32, uid: u32) -> String {
    let folder = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(folder.as_bytes());
    format!("{ID_PREFIX}{tag}.{uidvalidity}.{uid}.{folder}")
}

/// `(folder as the server spells it, uidvalidity, uid)` of an id issued for the mailbox `tag`.
pub(super) fn parse_message_id(id: &str, tag: &str) -> Result<(String, u32, u32), ToolFailure> {
    let invalid = || ToolFailure::invalid_arguments("`message_id` is not a message id from email_search_messages");
    let mut parts = id.strip_prefix(ID_PREFIX).ok_or_else(invalid)?.splitn(4, '.');
    if parts.next().ok_or_else(invalid)? != tag {
        return Err(ToolFailure::invalid_arguments(
            "`message_id` was issued for another mailbox: use the `account` it was found in, or search this one again",
        ));
    }
    let uidvalidity = parts.next().and_then(|p| p.parse().ok()).ok_or_else(invalid)?;
    let uid = parts.next().and_then(|p| p.parse().ok()).filter(|uid| *uid > 0).ok_or_else(invalid)?;
    let folder = parts.next().and_then(|p| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(p).ok()).ok_or_else(invalid)?;
    let folder = String::from_utf8(folder).map_err(|_| invalid())?;
    mailbox(&folder).map_err(|_| invalid())?;
    Ok((folder, uidvalidity, uid))
}

/// IMAP's modified UTF-7 for mailbox names (RFC 3501 §5.1.3): printable ASCII as itself (`&` as
/// `&-`), everything else as UTF-16 in base64 with `,` for `/`, between `&` and `-`.
pub mod utf7 {
    use base64::Engine as _;
    use base64::alphabet::IMAP_MUTF7;
    use base64::engine::{GeneralPurpose, GeneralPurposeConfig, DecodePaddingMode};

    const ENGINE: GeneralPurpose =
        GeneralPurpose::new(&IMAP_MUTF7, GeneralPurposeConfig::new().with_encode_padding(false).with_decode_padding_mode(DecodePaddingMode::RequireNone));

    /// The display name; a malformed name is returned as it is.
    pub fn decode(raw: &str) -> String {
        let mut out = String::with_capacity(raw.len());
        let mut rest = raw;
        while let Some(start) = rest.find('&') {
            out.push_str(&rest[..start]);
            let after = &rest[start + 1..];
            let Some(end) = after.find('-') else { return raw.to_owned() };
            let encoded = &after[..end];
            if encoded.is_empty() {
                out.push('&');
            } else {
                let Ok(bytes) = ENGINE.decode(encoded) else { return raw.to_owned() };
                if bytes.len() % 2 != 0 {
                    return raw.to_owned();
                }
                let units: Vec<u16> = bytes.chunks_exact(2).map(|pair| u16::from_be_bytes([pair[0], pair[1]])).collect();
                let Ok(text) = String::from_utf16(&units) else { return raw.to_owned() };
                out.push_str(&text);
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        out
    }

    /// The name as the server spells it.
    pub fn encode(name: &str) -> String {
        let mut out = String::with_capacity(name.len());
        let mut pending: Vec<u16> = Vec::new();
        let flush = |pending: &mut Vec<u16>, out: &mut String| {
            if !pending.is_empty() {
                let bytes: Vec<u8> = pending.iter().flat_map(|unit| unit.to_be_bytes()).collect();
                out.push('&');
                out.push_str(&ENGINE.encode(bytes));
                out.push('-');
                pending.clear();
            }
        };
        for c in name.chars() {
            if (' '..='~').contains(&c) {
                flush(&mut pending, &mut out);
                if c == '&' {
                    out.push_str("&-");
                } else {
                    out.push(c);
                }
            } else {
                let mut units = [0; 2];
                pending.extend_from_slice(c.encode_utf16(&mut units));
            }
        }
        flush(&mut pending, &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modified_utf7_round_trips_the_rfc_examples_and_more() {
        for (display, raw) in [
            ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
            ("Entwürfe", "Entw&APw-rfe"),
            ("R&D", "R&-D"),
            ("Отправленные", "&BB4EQgQ,BEAEMAQyBDsENQQ9BD0ESwQ1-"),
            ("INBOX", "INBOX"),
            ("😀 fun", "&2D3eAA- fun"),
        ] {
            assert_eq!(utf7::encode(display), raw, "{display}");
            assert_eq!(utf7::decode(raw), display, "{raw}");
        }
        assert_eq!(utf7::decode("broken&AAA"), "broken&AAA", "a malformed name stays as it is");
    }

    #[test]
    fn message_ids_round_trip_and_refuse_anything_else() {
        let id = message_id("TAG", "Entw&APw-rfe/2026", 1_700_000_000, 42);
        assert_eq!(parse_message_id(&id, "TAG").expect("an id"), ("Entw&APw-rfe/2026".to_owned(), 1_700_000_000, 42));
        let other = parse_message_id(&id, "OTHER").expect_err("another mailbox's id");
        assert!(other.message.contains("another mailbox"), "{}", other.message);
        for bad in ["", "42", "m1.1.1.SU5CT1g", "m2.TAG.1.0.SU5CT1g", "m2.TAG.x.1.SU5CT1g", "m2.TAG.1.1.***", "m3.TAG.1.1.SU5CT1g"] {
            assert_eq!(parse_message_id(bad, "TAG").expect_err(bad).kind, FailureKind::InvalidInput, "{bad}");
        }
    }

    #[test]
    fn strings_are_quoted_when_ascii_and_literals_otherwise() {
        assert!(matches!(astring("a \"b\""), Piece::Text(t) if t == "\"a \\\"b\\\"\""));
        assert!(matches!(astring("Café"), Piece::Literal(b) if b == "Café".as_bytes()));
        assert!(matches!(astring("a\r\nb"), Piece::Literal(_)));
    }
}
