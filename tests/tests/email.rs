//! Email end to end: the real `squaremcp serve` and CLI against a real IMAP server (Dovecot on
//! loopback, see `squaremcp_tests::dovecot`) and a real SMTP server (aiosmtpd) that relays what
//! it accepts into Dovecot over LMTP, so that sent mail arrives. Two mailboxes are stored as two
//! accounts of one customer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use squaremcp_tests::dovecot::{Dovecot, Seed};
use squaremcp_tests::{Server, SmtpSink, TempDir, cli_json, create_tenant};

const ALICE: (&str, &str) = ("alice@example.test", "alice-pw-7f3a9c");
const BOB: (&str, &str) = ("bob@example.test", "bob-pw-51d2e0");
const PROJECT: &str = "Projekte/Überblick";
const RUSSIAN: &str = "Отчёты";

async fn call(server: &Server, key: &str, name: &str, arguments: Value) -> Value {
    server.call_tool(key, name, arguments).await
}

/// A successful call's structured content.
async fn ok(server: &Server, key: &str, name: &str, arguments: Value) -> Value {
    server.call_tool_ok(key, name, arguments).await
}

fn account(user: (&str, &str), dovecot: &Dovecot, smtp: &SmtpSink) -> Value {
    json!({ "address": user.0, "username": user.0, "password": user.1,
        "imap_host": "127.0.0.1", "imap_port": dovecot.imap_port, "imap_security": "starttls",
        "smtp_host": "127.0.0.1", "smtp_port": smtp.port, "smtp_security": "none" })
}

fn seeds() -> Vec<Seed<'static>> {
    let alice = ALICE.0;
    vec![
        Seed { user: alice, folder: "INBOX", message: "From: Carol Jones <carol@example.test>\nTo: alice@example.test\n\
            Subject: Quarterly report\nDate: Tue, 03 Feb 2026 10:00:00 +0000\nMessage-ID: <report-1@example.test>\n\
            MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b1\"\n\n--b1\nContent-Type: text/plain; charset=utf-8\n\n\
            Hi Alice, the figures are attached.\n--b1\nContent-Type: text/csv; name=\"report.csv\"\n\
            Content-Disposition: attachment; filename=\"report.csv\"\nContent-Transfer-Encoding: base64\n\n\
            cmVnaW9uLHNhbGVzCm5vcnRoLDEyCnNvdXRoLDMwCg==\n--b1--\n".to_owned() },
        Seed { user: alice, folder: "INBOX", message: "From: Carol Jones <carol@example.test>\nTo: alice@example.test\n\
            Subject: Lunch plans\nDate: Wed, 04 Feb 2026 12:00:00 +0000\nMessage-ID: <lunch-1@example.test>\n\nNoon?\n".to_owned() },
        Seed { user: alice, folder: "INBOX", message: "From: Dave <dave@example.test>\nTo: alice@example.test\n\
            Subject: =?UTF-8?Q?=C3=9Cberraschung_zum_Geburtstag?=\nDate: Thu, 05 Feb 2026 09:00:00 +0000\n\
            Message-ID: <party-1@example.test>\nMIME-Version: 1.0\nContent-Type: text/html; charset=utf-8\n\n\
            <html><body><p>Kommst du am <b>Samstag</b>?</p></body></html>\n".to_owned() },
        Seed { user: alice, folder: PROJECT, message: "From: Erin <erin@example.test>\nTo: alice@example.test\n\
            Subject: Roadmap 2026\nDate: Fri, 06 Feb 2026 09:00:00 +0000\nMessage-ID: <roadmap@example.test>\n\nQ1: email.\n".to_owned() },
        Seed { user: BOB.0, folder: "INBOX", message: "From: Frank <frank@example.test>\nTo: bob@example.test\n\
            Subject: Only for Bob\nDate: Fri, 06 Feb 2026 10:00:00 +0000\nMessage-ID: <bob-1@example.test>\n\nHi Bob.\n".to_owned() },
    ]
}

/// The FETCH line of Alice's INBOX message `uid` with its flags, read over IMAP directly.
fn fetched_flags(dovecot: &Dovecot, uid: u64) -> String {
    let answer = dovecot.imap(ALICE.0, ALICE.1, &["EXAMINE INBOX", &format!("UID FETCH {uid} (FLAGS)")]);
    answer.lines().find(|line| line.starts_with("* ") && line.contains(" FETCH ")).unwrap_or_else(|| panic!("no FETCH: {answer}")).to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_tools_work_on_a_real_imap_and_smtp_server() {
    let dovecot = Dovecot::start(&[ALICE, BOB], &[PROJECT, RUSSIAN], &seeds());
    let smtp = SmtpSink::start_relaying(dovecot.lmtp_port, &[ALICE, BOB]);
    let data = TempDir::new("email");
    let tenant = create_tenant(data.path(), "owner@example.com");
    let set = |name: &str, document: Value| {
        cli_json(data.path(), &["credentials", "set", "--customer", &tenant.id, "--platform", "email", "--account", name], &document.to_string());
    };
    set("work", account(ALICE, &dovecot, &smtp));
    set("home", account(BOB, &dovecot, &smtp));
    let mut tls = account(ALICE, &dovecot, &smtp);
    tls["imap_port"] = json!(dovecot.imaps_port);
    tls["imap_security"] = json!("tls");
    set("tls", tls);
    let mut wrong = account(ALICE, &dovecot, &smtp);
    wrong["password"] = json!("not-the-password");
    set("wrong", wrong);
    let ca = dovecot.ca_file().display().to_string();
    let server = Server::start(data.path(), &[("SQUAREMCP_ALLOW_PRIVATE_HOSTS", "1"), ("SQUAREMCP_EXTRA_CA_FILE", &ca)]);
    let key = &tenant.key;

    // Five tools with honest annotations: reads, a read that may mark read, two writes.
    let hints = server.tool_hints(key, "email_").await;
    let expected = [
        ("email_list_folders", true, false, true),
        ("email_search_messages", true, false, true),
        ("email_read_message", false, false, true),
        ("email_send_email", false, false, false),
        ("email_create_draft", false, false, false),
    ];
    assert_eq!(hints, expected.map(|(n, r, d, i)| (n.to_owned(), r, d, i)));

    // Folders, non-ASCII names decoded, special uses found; over STARTTLS and over TLS with the
    // operator's extra CA alike.
    for account in ["work", "tls"] {
        let folders = ok(&server, key, "email_list_folders", json!({"account": account, "with_counts": true})).await;
        let folders = folders["folders"].as_array().unwrap();
        let find = |name: &str| folders.iter().find(|f| f["name"] == name).unwrap_or_else(|| panic!("{name} in {folders:?}"));
        assert_eq!(find(PROJECT)["messages"], 1);
        assert_eq!(find(RUSSIAN)["messages"], 0);
        assert_eq!(find("Drafts")["special_use"], "drafts");
        assert_eq!(find("Sent")["special_use"], "sent");
        assert_eq!(find("INBOX")["messages"], 3);
    }

    // Several criteria at once (AND), and a UTF-8 search term.
    let found = ok(&server, key, "email_search_messages", json!({"account": "work", "from": "carol", "subject": "report",
        "since": "2020-01-01", "unread": true})).await;
    assert_eq!(found["total"], 1, "{found}");
    let report = &found["messages"][0];
    assert_eq!((report["subject"].as_str(), report["from"].as_str()), (Some("Quarterly report"), Some("Carol Jones <carol@example.test>")));
    let carol = ok(&server, key, "email_search_messages", json!({"account": "work", "from": "carol"})).await;
    assert_eq!(carol["total"], 2);
    assert_eq!(carol["messages"][0]["subject"], "Lunch plans", "newest first");
    let party = ok(&server, key, "email_search_messages", json!({"account": "work", "subject": "Überraschung"})).await;
    assert_eq!(party["total"], 1, "{party}");
    assert_eq!(party["messages"][0]["subject"], "Überraschung zum Geburtstag");
    let project = ok(&server, key, "email_search_messages", json!({"account": "work", "folder": PROJECT})).await;
    assert_eq!(project["messages"][0]["subject"], "Roadmap 2026");
    assert_eq!(project["folder"], PROJECT);

    // Reading a multipart message: text, the attachment listed (not its bytes), and not marked read.
    let read = ok(&server, key, "email_read_message", json!({"account": "work", "id": report["id"]})).await;
    assert!(read["text"].as_str().unwrap().contains("the figures are attached"), "{read}");
    assert_eq!(read["attachments"], json!([{"filename": "report.csv", "mime": "text/csv", "size": 31, "part": 1}]));
    assert!(!read.to_string().contains("cmVnaW9u"), "no attachment bytes in the result");
    assert_eq!(read["message_id"], "<report-1@example.test>");
    let uid = report["uid"].as_u64().unwrap();
    let flags = fetched_flags(&dovecot, uid);
    assert!(!flags.contains("\\Seen"), "reading marked the message read: {flags}");
    // An HTML-only message reads as text, with the HTML on request; a short cap is marked.
    let html = ok(&server, key, "email_read_message", json!({"account": "work", "id": party["messages"][0]["id"], "include_html": true})).await;
    assert!(html["text"].as_str().unwrap().contains("Kommst du am Samstag?"), "{html}");
    assert!(html["html"].as_str().unwrap().contains("<b>Samstag</b>"));
    let marked = ok(&server, key, "email_read_message", json!({"account": "work", "id": report["id"], "mark_read": true, "max_chars": 500})).await;
    assert_eq!(marked["truncated"], false);
    let flags = fetched_flags(&dovecot, uid);
    assert!(flags.contains("\\Seen"), "mark_read did not set \\Seen: {flags}");

    // A draft lands in Drafts, flagged \Draft, with the UID the server gave it.
    let draft = ok(&server, key, "email_create_draft", json!({"account": "work", "to": ["bob@example.test"], "subject": "Draft: plan",
        "body": "Not yet."})).await;
    assert_eq!(draft["folder"], "Drafts");
    let draft_uid = draft["uid"].as_u64().expect("APPENDUID");
    let fetched = dovecot.imap(ALICE.0, ALICE.1, &["EXAMINE Drafts", &format!("UID FETCH {draft_uid} (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")]);
    assert!(fetched.contains("\\Draft") && fetched.contains("Draft: plan"), "{fetched}");
    let drafts = ok(&server, key, "email_search_messages", json!({"account": "work", "folder": "Drafts"})).await;
    assert_eq!(drafts["messages"][0]["id"], draft["id"]);

    // Sending: the SMTP server accepts it, it arrives in Bob's mailbox (the other account of the
    // same customer), and Alice's Sent folder has the copy.
    let sent = ok(&server, key, "email_send_email", json!({"account": "work", "to": ["Bob <bob@example.test>"], "subject": "Grüße aus dem Test",
        "body": "Hallo Bob!", "html": "<p>Hallo <b>Bob</b>!</p>", "in_reply_to": "<bob-1@example.test>"})).await;
    assert_eq!(sent["accepted"], json!(["bob@example.test"]), "{sent}");
    assert_eq!(sent["sent_copy"]["folder"], "Sent", "{sent}");
    assert!(smtp.messages().iter().any(|m| m.contains("In-Reply-To: <bob-1@example.test>")), "the SMTP server got the reply");
    let arrived = ok(&server, key, "email_search_messages", json!({"account": "home", "subject": "Grüße"})).await;
    assert_eq!(arrived["total"], 1, "{arrived}");
    let in_sent = ok(&server, key, "email_search_messages", json!({"account": "work", "folder": "Sent", "subject": "Grüße"})).await;
    assert_eq!(in_sent["messages"][0]["id"], sent["sent_copy"]["id"]);
    let copy = ok(&server, key, "email_read_message", json!({"account": "home", "id": arrived["messages"][0]["id"]})).await;
    assert_eq!((copy["text"].as_str().map(str::trim), copy["from"].as_str()), (Some("Hallo Bob!"), Some(ALICE.0)));
    assert_eq!(copy["in_reply_to"], "<bob-1@example.test>");

    // Two accounts of one customer stay apart.
    let alice_sees = ok(&server, key, "email_search_messages", json!({"account": "work", "subject": "Only for Bob"})).await;
    let bob_sees = ok(&server, key, "email_search_messages", json!({"account": "home", "subject": "Only for Bob"})).await;
    assert_eq!((alice_sees["total"].as_u64(), bob_sees["total"].as_u64()), (Some(0), Some(1)));
    let foreign = call(&server, key, "email_read_message", json!({"account": "home", "id": report["id"]})).await;
    assert_eq!(foreign["isError"], true, "Alice's message id is nothing in Bob's mailbox: {foreign}");

    // A wrong password: a clear failure with its kind, and the password never shown.
    let refused = call(&server, key, "email_list_folders", json!({"account": "wrong"})).await;
    assert_eq!(refused["isError"], true);
    assert_eq!(refused["_meta"]["squaremcp/error"]["kind"], "auth_revoked", "{refused}");
    assert!(refused["content"][0]["text"].as_str().unwrap().contains("username or password"), "{refused}");
    assert!(!refused.to_string().contains("not-the-password"));
    drop(server);

    // Without the operator's switch, the same loopback server is refused before any connection.
    let guarded = Server::start(data.path(), &[]);
    for (tool, arguments) in [
        ("email_list_folders", json!({"account": "work"})),
        ("email_send_email", json!({"account": "work", "to": ["bob@example.test"], "subject": "x", "body": "y"})),
    ] {
        let refused = call(&guarded, key, tool, arguments).await;
        assert_eq!(refused["_meta"]["squaremcp/error"]["kind"], "forbidden", "{tool}: {refused}");
        let message = refused["content"][0]["text"].as_str().unwrap();
        assert!(message.contains("plaintext") || message.contains("SQUAREMCP_ALLOW_PRIVATE_HOSTS"), "{message}");
    }
    let refused = call(&guarded, key, "email_list_folders", json!({"account": "tls"})).await;
    assert_eq!(refused["_meta"]["squaremcp/error"]["kind"], "forbidden", "{refused}");
    assert!(refused["content"][0]["text"].as_str().unwrap().contains("a loopback address"), "{refused}");
    assert_eq!(smtp.messages().len(), 1, "nothing more was sent");
}

/// An RFC 7662 introspection endpoint for Dovecot's oauth2 passdb: `active` only for `token`,
/// and answers `email` = `user`. Returns its URL and the request bodies it saw.
async fn introspection(token: &'static str, user: &'static str) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/introspect", listener.local_addr().unwrap());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buffer = [0_u8; 4096];
                // Headers, then as much body as Content-Length says.
                let body = loop {
                    let Ok(n) = socket.read(&mut buffer).await else { return };
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buffer[..n]);
                    let text = String::from_utf8_lossy(&request).into_owned();
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let length = head
                            .lines()
                            .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap_or(0)))
                            .unwrap_or(0);
                        if body.len() >= length {
                            break body.to_owned();
                        }
                    }
                };
                log.lock().unwrap().push(body.clone());
                let active = body.split('&').any(|pair| pair == format!("token={token}"));
                let answer = if active { json!({"active": true, "email": user}) } else { json!({"active": false}) }.to_string();
                let response = format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}", answer.len());
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    (url, seen)
}

/// `{"oauth2": {"access_token"}}` signs in with SASL XOAUTH2 to a real IMAP server (Dovecot's
/// oauth2 passdb, which introspects the token): the exchange Gmail and Microsoft 365 use.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oauth2_access_token_signs_in_with_xoauth2() {
    const TOKEN: &str = "ya29.test-access-token-0f1e2d3c";
    let (url, seen) = introspection(TOKEN, ALICE.0).await;
    let dovecot = Dovecot::start_with_oauth2(&[ALICE], &[PROJECT], &seeds()[..1], Some(&url));
    let smtp = SmtpSink::start_relaying(dovecot.lmtp_port, &[ALICE]);
    let data = TempDir::new("email-oauth2");
    let tenant = create_tenant(data.path(), "owner@example.com");
    for (name, token) in [("google", TOKEN), ("stale", "ya29.revoked-token")] {
        let mut document = account(ALICE, &dovecot, &smtp);
        document.as_object_mut().unwrap().remove("password");
        document["oauth2"] = json!({ "access_token": token });
        cli_json(data.path(), &["credentials", "set", "--customer", &tenant.id, "--platform", "email", "--account", name], &document.to_string());
    }
    let ca = dovecot.ca_file().display().to_string();
    let server = Server::start(data.path(), &[("SQUAREMCP_ALLOW_PRIVATE_HOSTS", "1"), ("SQUAREMCP_EXTRA_CA_FILE", &ca)]);

    let folders = ok(&server, &tenant.key, "email_list_folders", json!({"account": "google", "with_counts": true})).await;
    let inbox = folders["folders"].as_array().unwrap().iter().find(|f| f["name"] == "INBOX").cloned().unwrap_or_default();
    assert_eq!(inbox["messages"], 1, "{folders}");
    assert!(seen.lock().unwrap().iter().any(|body| body.contains(&format!("token={TOKEN}"))), "Dovecot introspected the token");

    let refused = call(&server, &tenant.key, "email_list_folders", json!({"account": "stale"})).await;
    assert_eq!(refused["isError"], true, "{refused}");
    // A refused token reads as expired: renewable where a connection can refresh it.
    assert_eq!(refused["_meta"]["squaremcp/error"]["kind"], "auth_expired", "{refused}");
    assert!(!refused.to_string().contains("ya29.revoked-token"));

    // This SMTP server offers PLAIN and LOGIN only: a token has no way in, and the error says so.
    let unsent = call(&server, &tenant.key, "email_send_email", json!({"account": "google", "to": [ALICE.0], "subject": "x", "body": "y"})).await;
    assert_eq!(unsent["_meta"]["squaremcp/error"]["kind"], "permission_missing", "{unsent}");
    assert!(unsent["content"][0]["text"].as_str().unwrap().contains("does not offer SASL XOAUTH2"), "{unsent}");
    assert!(smtp.messages().is_empty(), "nothing was sent");
}
