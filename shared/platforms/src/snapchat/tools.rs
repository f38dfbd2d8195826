//! Snapchat's tools: `get_me` as a row of data, `get_ad_accounts` across the person's
//! organizations (one call for the organizations, one per organization for its ad accounts), and
//! `create_snap`, partner-only (see [`RESTRICTION`]; the real tool is in [`super::public_profile`]).

use std::sync::Arc;

use async_trait::async_trait;
use reqwest::Method;
use serde_json::{Map, Value, json};
use squaremcp_core::tool::{Annotations, Tool, ToolDefinition, ToolFailure, ToolOutput};
use squaremcp_core::{Platform, Secret};

use super::dialect::{self, SnapchatDialect};
use super::public_profile::CreateSnap;
use crate::kit::{Arg, HttpApi, HttpTool, HttpToolSpec, PlatformContext, ToolSpec, partner_only};

/// What `create_snap` answers unless the operator has Public Profile API access.
pub const RESTRICTION: &str = "Snapchat has no API to send a Snap to friends. The nearest real endpoint, posting a Story to a \
    Public Profile (Snap's Public Profile API), is open only to allow-listed partners: Snap adds an app's client id on request.";

/// The most organizations whose ad accounts one call reads (one request each).
const MAX_ORGANIZATIONS: usize = 20;

pub(super) fn build(context: &PlatformContext) -> Vec<Arc<dyn Tool>> {
    let api = Arc::new(HttpApi::new(
        context.http.clone(),
        context.origin.clone(),
        SnapchatDialect,
    ));
    let get_me: Arc<dyn Tool> = Arc::new(HttpTool::new(me_row(), api.clone()));
    let ad_accounts: Arc<dyn Tool> = Arc::new(AdAccounts {
        definition: ad_accounts_spec().take_definition(Platform::Snapchat),
        api,
    });
    let snap = Arc::new(CreateSnap::new(
        context.http.clone(),
        &context.origin,
        context.media.clone(),
    ));
    vec![
        get_me,
        ad_accounts,
        partner_only(&context.partner_access, snap, RESTRICTION),
    ]
}

fn me_row() -> HttpToolSpec {
    HttpToolSpec::get(
        ToolSpec::new(
            "get_me",
            "Snapchat: get the connected account",
            "Returns the connected Snapchat business user as {\"me\": {id, display_name, email, organization_id, …}} (scope \
             snapchat-marketing-api). Use it to check that the connection works.",
            Annotations::READ,
        )
        .output(json!({
            "type": "object",
            "properties": {"me": {"type": "object", "properties": {
                "id": {"type": "string"}, "display_name": {"type": "string"}, "email": {"type": "string"},
                "organization_id": {"type": "string"}
            }, "required": ["id"]}},
            "required": ["me"]
        })),
        "/me",
    )
    .operation(dialect::GET_ME)
}

fn ad_accounts_spec() -> ToolSpec {
    ToolSpec::new(
        "get_ad_accounts",
        "Snapchat: list the ad accounts",
        "Lists the ad accounts of every organization the connected user belongs to: {\"organizations\": [{id, name}], \
         \"ad_accounts\": [{id, name, type, status, currency, timezone, organization_id, …}]}. Reads the first 20 \
         organizations; `incomplete` is true when there were more or Snap paged a list.",
        Annotations::READ,
    )
    .output(json!({
        "type": "object",
        "properties": {
            "organizations": {"type": "array", "items": {"type": "object", "properties": {"id": {"type": "string"}, "name": {"type": "string"}}, "required": ["id"]}},
            "ad_accounts": {"type": "array", "items": {"type": "object", "properties": {
                "id": {"type": "string"}, "name": {"type": "string"}, "organization_id": {"type": "string"}}, "required": ["id"]}},
            "incomplete": {"type": "boolean"}
        },
        "required": ["organizations", "ad_accounts", "incomplete"]
    }))
}

/// The entities of a Snap list answer whose `sub_request_status` is SUCCESS.
fn entities(answer: &Value, list: &str, entity: &str) -> Vec<Value> {
    answer
        .get(list)
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter(|item| {
                    item.get("sub_request_status")
                        .and_then(Value::as_str)
                        .is_none_or(|s| s == "SUCCESS")
                })
                .filter_map(|item| {
                    item.get(entity)
                        .filter(|e| e.get("id").and_then(Value::as_str).is_some())
                        .cloned()
                })
                .collect()
        })
        .unwrap_or_default()
}

fn paged(answer: &Value) -> bool {
    answer
        .pointer("/paging/next_link")
        .and_then(Value::as_str)
        .is_some_and(|link| !link.is_empty())
}

struct AdAccounts {
    definition: ToolDefinition,
    api: Arc<HttpApi<SnapchatDialect>>,
}

#[async_trait]
impl Tool for AdAccounts {
    fn definition(&self) -> &ToolDefinition {
        &self.definition
    }

    async fn call(
        &self,
        credential: &Secret<Value>,
        _arguments: Map<String, Value>,
    ) -> Result<ToolOutput, ToolFailure> {
        let token = self.api.credential(credential)?;
        let organizations_request = crate::kit::UpstreamRequest {
            path: "/me/organizations".to_owned(),
            ..Default::default()
        };
        let answer = self
            .api
            .send(
                &token,
                &Method::GET,
                dialect::GET_ORGANIZATIONS,
                &organizations_request,
                true,
            )
            .await?;
        let organizations = entities(&answer, "organizations", "organization");
        let mut incomplete = paged(&answer) || organizations.len() > MAX_ORGANIZATIONS;
        // The path's organization id is percent-encoded by the kit, like any path argument.
        let per_organization = HttpToolSpec::get(
            ToolSpec::new("get_ad_accounts", "", "", Annotations::READ).arg(
                Arg::new("organization_id", json!({"type": "string"}))
                    .required()
                    .in_path(),
            ),
            "/organizations/{organization_id}/adaccounts",
        );
        let mut ad_accounts = Vec::new();
        let mut listed = Vec::new();
        for organization in organizations.iter().take(MAX_ORGANIZATIONS) {
            let id = organization["id"].as_str().unwrap_or_default();
            let mut arguments = Map::new();
            arguments.insert("organization_id".to_owned(), json!(id));
            let request = per_organization.request(&arguments)?;
            let answer = self
                .api
                .send(
                    &token,
                    &Method::GET,
                    dialect::GET_AD_ACCOUNTS,
                    &request,
                    true,
                )
                .await?;
            incomplete |= paged(&answer);
            for mut account in entities(&answer, "adaccounts", "adaccount") {
                if account.get("organization_id").is_none() {
                    account["organization_id"] = json!(id);
                }
                ad_accounts.push(account);
            }
            listed.push(
                json!({"id": id, "name": organization.get("name").cloned().unwrap_or(Value::Null)}),
            );
        }
        Ok(ToolOutput {
            structured: json!({"organizations": listed, "ad_accounts": ad_accounts, "incomplete": incomplete}),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_successful_entities_are_kept() {
        let answer = json!({"request_status": "SUCCESS", "organizations": [
            {"sub_request_status": "SUCCESS", "organization": {"id": "o1", "name": "A"}},
            {"sub_request_status": "ERROR", "organization": {"id": "o2"}},
            {"sub_request_status": "SUCCESS", "organization": {"name": "no id"}}
        ]});
        let kept = entities(&answer, "organizations", "organization");
        assert_eq!(kept, vec![json!({"id": "o1", "name": "A"})]);
        assert!(!paged(&answer));
        assert!(paged(
            &json!({"paging": {"next_link": "https://adsapi.snapchat.com/v1/x?cursor=1"}})
        ));
    }
}
