//! Every sample event in `events/invoice-cron/` goes through the function's handler in-process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;

use lambda_http::lambda_runtime::{Context, LambdaEvent};
use serde_json::Value;
use squaremcp_runtime::{Backends, Config, gateway, invoice_run, lambda};

#[tokio::test]
async fn every_sample_event_runs_the_invoice_job() {
    let data_dir = std::env::temp_dir().join(format!("squaremcp-invoice-events-{}", std::process::id()));
    let config_at = |now: &str| {
        let vars = BTreeMap::from([("SQUAREMCP_DATA_DIR", data_dir.to_str().unwrap()), ("SQUAREMCP_NOW", now)]);
        Config::from_lookup(|name| vars.get(name).map(|v| (*v).to_owned())).unwrap()
    };
    // A customer since October: billed for October, not for September.
    let october = config_at("2026-10-10T12:00:00Z");
    gateway(&october, Backends::embedded(&october).unwrap()).create_customer("ada@example.com", "pro", None).await.unwrap();
    let closing = config_at("2026-11-01T06:00:00Z");
    let job = invoice_run(&closing, &Backends::embedded(&closing).unwrap()).unwrap();

    let events = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events/invoice-cron");
    let mut checked = Vec::new();
    for entry in std::fs::read_dir(&events).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let event: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let result = lambda::invoice_event(&job, LambdaEvent::new(event, Context::default())).await.unwrap();
        let report = &result["report"];
        match name.as_str() {
            "scheduled.json" => {
                assert_eq!(result["month"], "2026-10", "a scheduled event invoices the previous month");
                assert_eq!(report["customers_seen"], 1, "{result}");
                assert_eq!(report["invoices_created"], 1, "{result}");
                assert_eq!(report["send_failures"], 1, "no SMTP server is configured, so the invoice waits: {result}");
            }
            "manual-month.json" => {
                assert_eq!(result["month"], "2026-09", "{result}");
                assert_eq!(report["invoices_created"], 0, "not a customer yet in September: {result}");
            }
            other => panic!("events/invoice-cron/{other} has no expectation here: add one"),
        }
        checked.push(name);
    }
    let _ = std::fs::remove_dir_all(&data_dir);
    assert_eq!(checked.len(), 2);
}
