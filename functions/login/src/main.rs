//! The `login` Lambda: `GET/POST /login` and `POST /logout` behind API Gateway, on the MCP
//! host so that the session cookie is first-party in the OAuth popup.

#[tokio::main]
async fn main() -> Result<(), squaremcp_runtime::lambda::Error> {
    squaremcp_runtime::lambda::run(squaremcp_http::login_router).await
}
