//! The `invoice-cron` Lambda: invoices the previous month on an EventBridge schedule.

#[tokio::main]
async fn main() -> Result<(), squaremcp_runtime::lambda::Error> {
    squaremcp_runtime::lambda::run_invoices().await
}
