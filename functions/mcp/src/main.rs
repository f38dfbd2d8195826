//! The `mcp` Lambda: `POST /mcp` behind API Gateway.

#[tokio::main]
async fn main() -> Result<(), squaremcp_runtime::lambda::Error> {
    squaremcp_runtime::lambda::run(squaremcp_http::mcp_router).await
}
