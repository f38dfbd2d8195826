//! Obsidian end to end: the real `squaremcp serve` and CLI with two vaults stored as two accounts
//! of one customer, a directory vault under `SQUAREMCP_OBSIDIAN_ROOT` and (when the emulator's
//! S3 API is at `AWS_ENDPOINT_URL_S3`, as `scripts/test` arranges) an S3 vault on moto_server.
//! The same cases run on both; a second customer's vault of the same name stays apart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use squaremcp_tests::{Server, TempDir, cli_json, create_tenant};

async fn call(server: &Server, key: &str, name: &str, arguments: Value) -> Value {
    server.call_tool(key, name, arguments).await
}

/// A successful call's structured content.
async fn ok(server: &Server, key: &str, name: &str, arguments: Value) -> Value {
    server.call_tool_ok(key, name, arguments).await
}

async fn refused(server: &Server, key: &str, name: &str, arguments: Value) -> String {
    let result = call(server, key, name, arguments).await;
    assert_eq!(result["isError"], true, "{name}: {result}");
    result["content"][0]["text"].as_str().unwrap_or_default().to_owned()
}

const PLAN: &str = "---\ntitle: Plan\ntags: [work]\n---\n# Plan\nship the vault tools\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn obsidian_tools_work_on_a_directory_vault_and_an_s3_vault() {
    let data = TempDir::new("obsidian");
    let root = data.path().join("vaults");
    let tenant = create_tenant(data.path(), "owner@example.com");
    let other = create_tenant(data.path(), "other@example.com");
    let set = |customer: &str, account: &str, document: Value| {
        cli_json(data.path(), &["credentials", "set", "--customer", customer, "--platform", "obsidian", "--account", account], &document.to_string());
    };
    // The directory vault: <root>/<customer id>/Notes, as a sync client would lay it out.
    let vault = root.join(&tenant.id).join("Notes");
    std::fs::create_dir_all(vault.join("Projects")).unwrap();
    std::fs::create_dir_all(vault.join(".obsidian")).unwrap();
    std::fs::write(vault.join("Projects/Plan.md"), PLAN).unwrap();
    std::fs::write(vault.join(".obsidian/app.json"), "{}").unwrap();
    set(&tenant.id, "disk", json!({ "vault": "Notes" }));
    // The other customer names a vault `Notes` too, but has none on disk.
    set(&other.id, "disk", json!({ "vault": "Notes" }));

    let mut accounts = vec!["disk"];
    if let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL_S3") {
        let endpoint = endpoint.trim_end_matches('/');
        let bucket = format!("e2e-vault-{}", std::process::id());
        let http = reqwest::Client::new();
        assert!(http.put(format!("{endpoint}/{bucket}")).send().await.unwrap().status().is_success());
        let put = http.put(format!("{endpoint}/{bucket}/vault/Projects/Plan.md")).body(PLAN).send().await.unwrap();
        assert!(put.status().is_success());
        set(&tenant.id, "cloud", json!({ "bucket": bucket, "prefix": "vault/", "region": "us-east-1", "endpoint": endpoint,
            "access_key_id": "test", "secret_access_key": "test-secret-e2e" }));
        accounts.push("cloud");
    } else {
        eprintln!("S3 vault skipped: AWS_ENDPOINT_URL_S3 is not set (scripts/test sets it to the emulator's S3 API)");
    }

    let root_text = root.display().to_string();
    let server = Server::start(data.path(), &[("SQUAREMCP_OBSIDIAN_ROOT", &root_text), ("SQUAREMCP_ALLOW_PRIVATE_HOSTS", "1")]);
    let key = &tenant.key;

    let hints = server.tool_hints(key, "obsidian_").await;
    let expected = [
        ("obsidian_search_notes", true, false, true),
        ("obsidian_read_note", true, false, true),
        ("obsidian_append_to_note", false, false, false),
        ("obsidian_update_note", false, true, false),
        ("obsidian_sync_status", true, false, true),
    ];
    assert_eq!(hints, expected.map(|(n, r, d, i)| (n.to_owned(), r, d, i)));

    for account in accounts {
        let read = ok(&server, key, "obsidian_read_note", json!({ "account": account, "path": "Projects/Plan" })).await;
        assert_eq!(read["front_matter"], json!({ "title": "Plan", "tags": ["work"] }), "{account}");
        assert_eq!(read["body"], "# Plan\nship the vault tools\n");
        let stale = read["version"].clone();

        ok(&server, key, "obsidian_append_to_note", json!({ "account": account, "path": "Projects/Plan.md", "text": "- [ ] tests" })).await;
        let conflict = refused(&server, key, "obsidian_update_note",
            json!({ "account": account, "path": "Projects/Plan.md", "content": "lost?", "version": stale })).await;
        assert!(conflict.contains("Conflict") && conflict.contains("changed since it was read"), "{account}: {conflict}");
        let current = ok(&server, key, "obsidian_read_note", json!({ "account": account, "path": "Projects/Plan.md" })).await;
        assert!(current["body"].as_str().unwrap().ends_with("- [ ] tests\n"), "{account}: the append survived");
        let updated = ok(&server, key, "obsidian_update_note",
            json!({ "account": account, "path": "Projects/Plan.md", "content": "# Plan\ndone\n", "version": current["version"] })).await;
        assert_eq!(updated["created"], false);

        let found = ok(&server, key, "obsidian_search_notes", json!({ "account": account, "query": "DONE" })).await;
        assert_eq!(found["matches"], json!([{ "path": "Projects/Plan.md", "line": 2, "text": "done", "before": ["# Plan"], "after": [] }]));
        for path in ["../../etc/passwd", "/etc/passwd", ".obsidian/app.json"] {
            let message = refused(&server, key, "obsidian_read_note", json!({ "account": account, "path": path })).await;
            assert!(!message.is_empty(), "{account} {path}");
        }
        let status = ok(&server, key, "obsidian_sync_status", json!({ "account": account })).await;
        assert_eq!(status["note_count"], 1, "{account}: {status}");
    }
    assert_eq!(std::fs::read_to_string(vault.join("Projects/Plan.md")).unwrap(), "# Plan\ndone\n");

    // Another customer's `Notes` is their own directory, which does not exist.
    let message = refused(&server, &other.key, "obsidian_read_note", json!({ "path": "Projects/Plan.md" })).await;
    assert!(message.contains("not set up on this gateway"), "{message}");
}

/// The deployment's own bucket (`SQUAREMCP_OBSIDIAN_BUCKET`, as template.yaml sets it for the
/// mcp Lambda): `{"vault": "NAME"}` with no vault directory is `<customer id>/NAME/` there,
/// reached with STS keys for that customer (moto's STS and S3; moto does not enforce the
/// session policy, which shared/aws checks).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_vault_directory_named_vaults_live_in_the_deployments_bucket_under_the_customers_prefix() {
    let (Ok(endpoint), Ok(_)) = (std::env::var("AWS_ENDPOINT_URL_S3"), std::env::var("AWS_ENDPOINT_URL_STS")) else {
        eprintln!("deployment bucket skipped: AWS_ENDPOINT_URL_S3 and AWS_ENDPOINT_URL_STS are not set (scripts/test sets them)");
        return;
    };
    let endpoint = endpoint.trim_end_matches('/');
    let data = TempDir::new("obsidian-bucket");
    let tenant = create_tenant(data.path(), "owner@example.com");
    let other = create_tenant(data.path(), "other@example.com");
    for customer in [&tenant.id, &other.id] {
        cli_json(data.path(), &["credentials", "set", "--customer", customer, "--platform", "obsidian", "--account", "default"], r#"{"vault": "Notes"}"#);
    }
    let bucket = format!("e2e-deployment-vaults-{}", std::process::id());
    let http = reqwest::Client::new();
    assert!(http.put(format!("{endpoint}/{bucket}")).send().await.unwrap().status().is_success());

    let server = Server::start(data.path(), &[
        ("SQUAREMCP_OBSIDIAN_BUCKET", &bucket),
        ("SQUAREMCP_OBSIDIAN_ROLE_ARN", "arn:aws:iam::123456789012:role/squaremcp-vaults"),
        ("SQUAREMCP_ALLOW_PRIVATE_HOSTS", "1"),
    ]);
    let written = ok(&server, &tenant.key, "obsidian_update_note", json!({ "account": "default", "path": "Projects/Plan.md", "content": PLAN })).await;
    assert_eq!(written["created"], true, "{written}");
    ok(&server, &tenant.key, "obsidian_append_to_note", json!({ "account": "default", "path": "Projects/Plan.md", "text": "- [ ] more" })).await;

    // Where it landed: the same bucket seen as a customer's own S3 vault at `<customer id>/Notes/`
    // (signed with the emulator's account keys; moto refuses unsigned reads of these objects).
    cli_json(data.path(), &["credentials", "set", "--customer", &tenant.id, "--platform", "obsidian", "--account", "direct"],
        &json!({ "bucket": bucket, "prefix": format!("{}/Notes/", tenant.id), "region": "us-east-1", "endpoint": endpoint,
            "access_key_id": "test", "secret_access_key": "test" }).to_string());
    let direct = ok(&server, &tenant.key, "obsidian_read_note", json!({ "account": "direct", "path": "Projects/Plan.md" })).await;
    assert!(direct["body"].as_str().unwrap().ends_with("- [ ] more\n"), "{direct}");
    let read = ok(&server, &tenant.key, "obsidian_read_note", json!({ "account": "default", "path": "Projects/Plan" })).await;
    assert_eq!(read["front_matter"], json!({ "title": "Plan", "tags": ["work"] }));
    let status = ok(&server, &tenant.key, "obsidian_sync_status", json!({ "account": "default" })).await;
    assert_eq!(status["note_count"], 1, "{status}");

    // The other customer's `Notes` is another prefix: empty.
    let message = refused(&server, &other.key, "obsidian_read_note", json!({ "path": "Projects/Plan.md" })).await;
    assert!(message.contains("does not exist in the vault"), "{message}");
    let status = ok(&server, &other.key, "obsidian_sync_status", json!({})).await;
    assert_eq!(status["note_count"], 0, "{status}");
}
