//! How Facebook's Graph API is spoken: `Authorization: Bearer <Page token>` (never
//! `access_token=` in a URL), the API version and the credential's Page id in the path, and
//! refusals in Graph's envelope ([`crate::kit::graph`]).

use reqwest::header::AUTHORIZATION;
use serde_json::Value;
use squaremcp_core::Platform;
use squaremcp_core::tool::ToolFailure;

use super::credential::PageToken;
use crate::kit::graph::{self, GraphWords};
use crate::kit::{Answer, Dialect};

// The operations as Meta's documentation names them; messages use them.
pub(super) const GET_PAGE: &str = "Get Page";
pub(super) const GET_POSTS: &str = "Get Page Posts";
pub(super) const CREATE_POST: &str = "Create Page Post";
pub(super) const CREATE_PHOTO: &str = "Publish Page Photo";
pub(super) const CREATE_VIDEO: &str = "Publish Page Video";
pub(super) const GET_VIDEO: &str = "Get Video";

pub(super) const WORDS: GraphWords = GraphWords {
    name: "Facebook",
    reconnect: "Get a new Page access token (GET /me/accounts with a long-lived user token of a Page admin) and store it again.",
    permissions: "pages_read_engagement and pages_manage_posts (publish_video for videos), and the person behind it must be \
        able to create content on the Page",
};

pub(crate) struct FacebookDialect {
    /// The Graph API version, e.g. `v26.0`: the first segment of every path.
    pub(crate) version: String,
}

impl Dialect for FacebookDialect {
    type Credential = PageToken;
    const PLATFORM: Platform = Platform::Facebook;
    const NAME: &'static str = "Facebook";

    fn path_values(&self, credential: &PageToken) -> Vec<(&'static str, String)> {
        vec![("version", self.version.clone()), ("page_id", credential.page_id.clone())]
    }

    fn authorize(&self, request: reqwest::RequestBuilder, credential: &PageToken) -> reqwest::RequestBuilder {
        request.header(AUTHORIZATION, credential.authorization.clone())
    }

    fn interpret(&self, operation: &str, answer: Answer<'_>) -> Result<Value, ToolFailure> {
        graph::interpret(&WORDS, operation, &answer)
    }
}
