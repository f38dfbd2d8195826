//! The `oauth` Lambda: discovery documents, client registration, authorization (consent),
//! token and revocation endpoints behind API Gateway.

#[tokio::main]
async fn main() -> Result<(), squaremcp_runtime::lambda::Error> {
    squaremcp_runtime::lambda::run(squaremcp_http::oauth_router).await
}
