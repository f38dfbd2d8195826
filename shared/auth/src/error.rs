use squaremcp_core::StoreError;

/// Failures of the machinery, never of the caller's input.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("stored {0} is corrupt")]
    Corrupt(&'static str),
    #[error("token signing failed: {0}")]
    Signing(String),
    #[error("password check failed: {0}")]
    Password(String),
    #[error("the signing secret must have at least {} bytes", crate::MIN_SECRET_BYTES)]
    WeakSecret,
}

/// An RFC 6749 §5.2 / RFC 7591 §3.2.2 / RFC 8707 error, answered as JSON by the edge.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error("{0}")]
    InvalidRequest(String),
    /// 401: unknown client or wrong secret. Claude re-registers on it.
    #[error("{0}")]
    InvalidClient(String),
    #[error("{0}")]
    InvalidGrant(String),
    #[error("{0}")]
    UnsupportedGrantType(String),
    #[error("{0}")]
    InvalidTarget(String),
    #[error("{0}")]
    InvalidRedirectUri(String),
    #[error("{0}")]
    InvalidClientMetadata(String),
    /// A rate limit: answered 429 with `Retry-After`.
    #[error("too many requests; retry in {retry_after} s")]
    TooManyRequests { retry_after: u64 },
    #[error(transparent)]
    Server(#[from] AuthError),
}

impl OAuthError {
    /// The `error` code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) => "invalid_request",
            Self::InvalidClient(_) => "invalid_client",
            Self::InvalidGrant(_) => "invalid_grant",
            Self::UnsupportedGrantType(_) => "unsupported_grant_type",
            Self::InvalidTarget(_) => "invalid_target",
            Self::InvalidRedirectUri(_) => "invalid_redirect_uri",
            Self::InvalidClientMetadata(_) => "invalid_client_metadata",
            Self::TooManyRequests { .. } => "temporarily_unavailable",
            Self::Server(_) => "server_error",
        }
    }

    /// The `error_description`: safe to show, never a secret.
    pub fn description(&self) -> String {
        match self {
            Self::Server(_) => "The authorization server could not complete the request; retry shortly.".to_owned(),
            other => other.to_string(),
        }
    }
}

impl From<StoreError> for OAuthError {
    fn from(e: StoreError) -> Self {
        Self::Server(AuthError::Store(e))
    }
}
