//! The `webhooks` Lambda: `GET`/`POST /webhooks/whatsapp` behind API Gateway.

#[tokio::main]
async fn main() -> Result<(), squaremcp_runtime::lambda::Error> {
    squaremcp_runtime::lambda::run(squaremcp_http::webhooks_router).await
}
