//! Tools whose API a platform opens only to partners it approved (LinkedIn's messaging and
//! connections, Snapchat's Public Profile posting). They stay listed, so people find them, but
//! unless the operator declares that access (`SQUAREMCP_PARTNER_ACCESS`, a comma-separated list of
//! tool names), calling one answers with the restriction and what the platform requires: no
//! upstream call, no metered call (failures never count), and no mark on the connection's health.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value};
use squaremcp_core::Secret;
use squaremcp_core::tool::{FailureKind, Tool, ToolDefinition, ToolFailure, ToolOutput};

/// The tool names the operator declared partner access for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PartnerAccess(Arc<BTreeSet<String>>);

impl PartnerAccess {
    /// From `SQUAREMCP_PARTNER_ACCESS`: tool names separated by commas (spaces ignored).
    pub fn parse(list: &str) -> Self {
        Self(Arc::new(list.split(',').map(str::trim).filter(|name| !name.is_empty()).map(str::to_owned).collect()))
    }

    pub fn allows(&self, tool: &str) -> bool {
        self.0.contains(tool)
    }

    /// The declared names, for checking them against the tools that exist.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

/// `tool` itself when the operator declared access to it; otherwise a tool with the same name,
/// schema and annotations whose description says it is partner-only and whose call answers
/// `not_supported` with `restriction` (what the platform requires).
pub fn partner_only(access: &PartnerAccess, tool: Arc<dyn Tool>, restriction: &'static str) -> Arc<dyn Tool> {
    if access.allows(&tool.definition().name) {
        return tool;
    }
    let mut definition = tool.definition().clone();
    definition.description = format!("{} Partner-only: {restriction}", definition.description);
    Arc::new(Restricted { definition, restriction })
}

struct Restricted {
    definition: ToolDefinition,
    restriction: &'static str,
}

#[async_trait]
impl Tool for Restricted {
    fn definition(&self) -> &ToolDefinition {
        &self.definition
    }

    async fn call(&self, _credential: &Secret<Value>, _arguments: Map<String, Value>) -> Result<ToolOutput, ToolFailure> {
        Err(ToolFailure::new(
            FailureKind::NotSupported,
            format!(
                "{} is not available on this gateway: {} The gateway's operator can enable it once that access is granted (SQUAREMCP_PARTNER_ACCESS).",
                self.definition.name, self.restriction
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use squaremcp_core::Platform;

    struct Real(ToolDefinition);

    #[async_trait]
    impl Tool for Real {
        fn definition(&self) -> &ToolDefinition {
            &self.0
        }
        async fn call(&self, _: &Secret<Value>, _: Map<String, Value>) -> Result<ToolOutput, ToolFailure> {
            Ok(ToolOutput { structured: json!({"sent": true}) })
        }
    }

    fn real() -> Arc<dyn Tool> {
        Arc::new(Real(ToolDefinition::new(Platform::Linkedin, "send_message", "Send", "Sends a message.", Map::new(), &[])))
    }

    #[tokio::test]
    async fn without_declared_access_the_tool_stays_listed_and_answers_with_the_restriction() {
        let tool = partner_only(&PartnerAccess::parse(" snapchat_create_snap "), real(), "LinkedIn opens messaging to approved partners only.");
        assert_eq!(tool.definition().name, "linkedin_send_message");
        assert!(tool.definition().description.contains("Partner-only: LinkedIn opens messaging"), "{}", tool.definition().description);
        let failure = tool.call(&Secret::new(json!({})), Map::new()).await.expect_err("restricted");
        assert_eq!(failure.kind, FailureKind::NotSupported);
        assert!(failure.message.contains("approved partners") && failure.message.contains("SQUAREMCP_PARTNER_ACCESS"), "{}", failure.message);
    }

    #[tokio::test]
    async fn declared_access_gives_the_real_tool() {
        let access = PartnerAccess::parse("linkedin_send_message, snapchat_create_snap");
        assert_eq!(access.names().collect::<Vec<_>>(), ["linkedin_send_message", "snapchat_create_snap"]);
        let tool = partner_only(&access, real(), "restricted");
        assert_eq!(tool.call(&Secret::new(json!({})), Map::new()).await.expect("real").structured, json!({"sent": true}));
    }
}
