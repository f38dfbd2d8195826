//! A local stand-in for Snap's Marketing API (`/v1/...`) and its token endpoint, on one origin.
//!
//! - `GET /v1/me`, `GET /v1/me/organizations`, `GET /v1/organizations/{id}/adaccounts` in Snap's
//!   envelope `{"request_status": "SUCCESS", "request_id", "<entity>s": [{"sub_request_status",
//!   "<entity>": {…}}]}`. Two organizations ([`ORGANIZATIONS`]) with one and two ad accounts; any
//!   other organization id answers 404 `E3003`. The token is read from `Authorization: Bearer …`
//!   (401 otherwise).
//! - `POST /login/oauth2/access_token`: `client_id`/`client_secret` in the form; answers
//!   `{"access_token", "token_type": "Bearer", "expires_in": 3600, "refresh_token", "scope"}`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::Method;
use serde_json::{Value, json};

use crate::{Fault, PlatformMock, RecordedRequest, Reply};

pub const USER_ID: &str = "8f2b9c1e-4a5d-4c2b-9e1f-0a1b2c3d4e5f";
pub const DISPLAY_NAME: &str = "Ada Lovelace";
/// The organizations the user belongs to: (id, name, ad account ids).
pub const ORGANIZATIONS: [(&str, &str, &[&str]); 2] = [
    (
        "40d6719b-da09-410b-9185-0cc9c0dfed1d",
        "Analytical Engines Ltd",
        &["8adc3db7-8148-4fbf-999c-8d2266369d74"],
    ),
    (
        "507ff8d5-54d5-4cd0-a2c9-bc4b8bb15c82",
        "Difference Works",
        &[
            "3b0fbace-04b4-4a1f-8e5b-8a2c1d7e5f60",
            "c2d3e4f5-0a1b-4c2d-8e3f-9a0b1c2d3e4f",
        ],
    ),
];

pub struct Snapchat {
    client_id: String,
    client_secret: String,
    access: Mutex<Vec<String>>,
    refresh: Mutex<HashMap<String, bool>>,
    codes: Mutex<Vec<String>>,
    next: AtomicU64,
}

impl Snapchat {
    pub fn accepting(tokens: &[&str]) -> Self {
        let mock = Self::with_client("snap-client", "snap-secret");
        *mock.access.lock().unwrap() = tokens.iter().map(|t| (*t).to_owned()).collect();
        mock
    }

    pub fn with_client(client_id: &str, client_secret: &str) -> Self {
        Self {
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            access: Mutex::new(Vec::new()),
            refresh: Mutex::new(HashMap::new()),
            codes: Mutex::new(Vec::new()),
            next: AtomicU64::new(1),
        }
    }

    /// A refresh token the token endpoint accepts (as from an earlier authorization).
    pub fn issue_refresh_token(&self) -> String {
        let token = format!("snap-refresh-{}", self.next.fetch_add(1, Ordering::SeqCst));
        self.refresh.lock().unwrap().insert(token.clone(), true);
        token
    }

    /// An authorization code as the consent page would give it (single use).
    pub fn issue_code(&self) -> String {
        let code = format!("snap-code-{}", self.next.fetch_add(1, Ordering::SeqCst));
        self.codes.lock().unwrap().push(code.clone());
        code
    }

    fn authorized(&self, request: &RecordedRequest) -> bool {
        let token = request
            .header("authorization")
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        !token.is_empty() && self.access.lock().unwrap().iter().any(|t| t == token)
    }

    fn token(&self, request: &RecordedRequest) -> Reply {
        let form: HashMap<String, String> = RecordedRequest {
            query: Some(String::from_utf8_lossy(&request.body).into_owned()),
            ..request.clone()
        }
        .query_pairs()
        .into_iter()
        .collect();
        let get = |k: &str| form.get(k).cloned().unwrap_or_default();
        if get("client_id") != self.client_id || get("client_secret") != self.client_secret {
            return Reply::json(401, json!({"error": "invalid_client"}));
        }
        let refresh = match get("grant_type").as_str() {
            "refresh_token"
                if self.refresh.lock().unwrap().get(&get("refresh_token")) == Some(&true) =>
            {
                get("refresh_token")
            }
            "authorization_code" if !get("redirect_uri").is_empty() => {
                let mut codes = self.codes.lock().unwrap();
                let Some(at) = codes.iter().position(|c| *c == get("code")) else {
                    return Reply::json(400, json!({"error": "invalid_grant"}));
                };
                codes.remove(at);
                self.issue_refresh_token()
            }
            _ => return Reply::json(400, json!({"error": "invalid_grant"})),
        };
        let n = self.next.fetch_add(1, Ordering::SeqCst);
        let access = format!("snap-access-{n}-0123456789");
        self.access.lock().unwrap().push(access.clone());
        Reply::json(
            200,
            json!({"access_token": access, "token_type": "Bearer", "expires_in": 3600, "refresh_token": refresh, "scope": "snapchat-marketing-api"}),
        )
    }
}

fn success(key: &str, entity: &str, items: Vec<Value>) -> Reply {
    let list: Vec<Value> = items
        .into_iter()
        .map(|item| json!({"sub_request_status": "SUCCESS", entity: item}))
        .collect();
    Reply::json(
        200,
        json!({"request_status": "SUCCESS", "request_id": "5f2b1c3d00ff0a1b2c3d4e5f60001", key: list}),
    )
}

fn error(status: u16, code: &str, message: &str) -> Reply {
    Reply::json(
        status,
        json!({"request_status": "ERROR", "request_id": "5f2b1c3d00ff0a1b2c3d4e5f60002", "debug_message": message, "display_message": message, "error_code": code}),
    )
}

impl PlatformMock for Snapchat {
    fn answer(&self, request: &RecordedRequest) -> Reply {
        if request.method == Method::POST && request.path == "/login/oauth2/access_token" {
            return self.token(request);
        }
        if !self.authorized(request) {
            return Reply::raw(401, "text/plain", "Unauthorized");
        }
        if request.method != Method::GET {
            return error(405, "E1001", "Method not allowed");
        }
        let segments: Vec<&str> = request.path.trim_matches('/').split('/').collect();
        match segments.as_slice() {
            ["v1", "me"] => Reply::json(200, json!({"request_status": "SUCCESS", "request_id": "5f2b1c3d00ff0a1b2c3d4e5f60000",
                "me": {"id": USER_ID, "updated_at": "2026-01-05T10:00:00.000Z", "created_at": "2024-03-01T09:00:00.000Z",
                    "email": "ada@example.com", "organization_id": ORGANIZATIONS[0].0, "display_name": DISPLAY_NAME, "member_status": "MEMBER"}})),
            ["v1", "me", "organizations"] => success("organizations", "organization",
                ORGANIZATIONS.iter().map(|(id, name, _)| json!({"id": id, "name": name, "type": "ENTERPRISE", "state": "ACTIVE"})).collect()),
            ["v1", "organizations", organization, "adaccounts"] => match ORGANIZATIONS.iter().find(|(id, _, _)| id == organization) {
                Some((id, name, accounts)) => success("adaccounts", "adaccount", accounts.iter().enumerate().map(|(i, account)| json!({
                    "id": account, "name": format!("{name} ad account {}", i + 1), "type": "PARTNER", "status": "ACTIVE",
                    "organization_id": id, "currency": "USD", "timezone": "America/Los_Angeles"})).collect()),
                None => error(404, "E3003", "Resource can not be found"),
            },
            _ => error(404, "E3003", "Resource can not be found"),
        }
    }

    fn fault(&self, fault: &Fault, _request: &RecordedRequest) -> Reply {
        match fault {
            Fault::Unauthorized => Reply::raw(401, "text/plain", "Unauthorized"),
            Fault::Forbidden => error(
                403,
                "E1002",
                "The user does not have access to this resource",
            ),
            Fault::RateLimited { retry_after } => error(429, "E1005", "Too many requests")
                .header("retry-after", retry_after.to_string()),
            Fault::ServerError | Fault::Slow(_) | Fault::Reply(_) => {
                error(500, "E2001", "Internal server error")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderMap;

    fn get(mock: &Snapchat, path: &str) -> Reply {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", "Bearer t".parse().unwrap());
        mock.answer(&RecordedRequest {
            method: Method::GET,
            path: path.to_owned(),
            query: None,
            headers,
            body: Default::default(),
        })
    }

    #[test]
    fn routes() {
        let mock = Snapchat::accepting(&["t"]);
        assert!(get(&mock, "/v1/me").body.contains(USER_ID));
        assert!(
            get(
                &mock,
                &format!("/v1/organizations/{}/adaccounts", ORGANIZATIONS[1].0)
            )
            .body
            .contains(ORGANIZATIONS[1].2[1])
        );
        assert_eq!(get(&mock, "/v1/organizations/nope/adaccounts").status, 404);
    }
}
