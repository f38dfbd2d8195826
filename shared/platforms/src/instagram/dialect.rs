//! How Instagram's Graph API is spoken: the host follows the credential's login
//! (`graph.instagram.com` or `graph.facebook.com`), `Authorization: Bearer <token>` (never in a
//! URL), the version and the account id in the path, refusals in Graph's envelope.

use reqwest::header::AUTHORIZATION;
use serde_json::Value;
use squaremcp_core::Platform;
use squaremcp_core::tool::ToolFailure;

use super::credential::{InstagramToken, Login};
use crate::kit::graph::{self, GraphWords};
use crate::kit::{Answer, Dialect, UpstreamRequest};

pub(super) const GET_PROFILE: &str = "Get IG User";
pub(super) const GET_MEDIA: &str = "Get IG User Media";
pub(super) const CREATE_CONTAINER: &str = "Create IG Media Container";
pub(super) const GET_CONTAINER: &str = "Get IG Container Status";
pub(super) const PUBLISH: &str = "Publish IG Media";

pub(super) const WORDS: GraphWords = GraphWords {
    name: "Instagram",
    reconnect: "Get a new long-lived token (Instagram Login, or Facebook Login for an account linked to a Page) and store it again.",
    permissions: "instagram_business_basic and instagram_business_content_publish (Instagram Login) or instagram_basic, \
        instagram_content_publish and pages_read_engagement (Facebook Login), on a professional account",
};

pub(crate) struct InstagramDialect {
    pub(crate) version: String,
    /// Instagram Login's origin and Facebook Login's (the same one under an operator override).
    pub(crate) instagram_origin: String,
    pub(crate) facebook_origin: String,
}

impl Dialect for InstagramDialect {
    type Credential = InstagramToken;
    const PLATFORM: Platform = Platform::Instagram;
    const NAME: &'static str = "Instagram";

    fn url(&self, _origin: &str, request: &UpstreamRequest, credential: &InstagramToken) -> String {
        let origin = match credential.login {
            Login::Instagram => &self.instagram_origin,
            Login::Facebook => &self.facebook_origin,
        };
        format!("{origin}{}", request.path)
    }

    fn path_values(&self, credential: &InstagramToken) -> Vec<(&'static str, String)> {
        vec![("version", self.version.clone()), ("ig_user_id", credential.ig_user_id.clone())]
    }

    fn authorize(&self, request: reqwest::RequestBuilder, credential: &InstagramToken) -> reqwest::RequestBuilder {
        request.header(AUTHORIZATION, credential.authorization.clone())
    }

    fn interpret(&self, operation: &str, answer: Answer<'_>) -> Result<Value, ToolFailure> {
        graph::interpret(&WORDS, operation, &answer)
    }
}
