//! X's tools: plain reads and the post as rows of data run by the kit's HTTP handler, with small
//! wrappers where one call picks its endpoint (`get_user_profile`) or arguments exclude each
//! other (`create_tweet`); the video upload is in [`super::upload`].

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value, json};
use squaremcp_core::tool::{Annotations, Tool, ToolDefinition, ToolFailure, ToolOutput};
use squaremcp_core::{Platform, Secret};

use super::dialect::{self, XDialect};
use super::upload::UploadVideo;
use crate::kit::spec::{integer_between, string};
use crate::kit::{Arg, HttpApi, HttpTool, HttpToolSpec, PlatformContext, ToolSpec};

/// Said in every description: X charges the app's credits per request.
pub(super) const BILLING: &str = "X bills the operator's app per request (pay-per-use credits)";

const USER_FIELDS: &str = "created_at,description,location,profile_image_url,public_metrics,url,verified,verified_type";
const TWEET_FIELDS: &str = "attachments,author_id,conversation_id,created_at,lang,public_metrics,referenced_tweets";

/// Every X tool, sharing one client.
pub(super) fn build(context: &PlatformContext) -> Vec<Arc<dyn Tool>> {
    let api = Arc::new(HttpApi::new(context.http.clone(), context.origin.clone(), XDialect));
    let tool = |row| -> Arc<dyn Tool> { Arc::new(HttpTool::new(row, api.clone())) };
    vec![
        tool(get_me()),
        Arc::new(UserProfile::new(api.clone())),
        tool(user_tweets()),
        tool(search_tweets()),
        Arc::new(CreateTweet::new(api.clone())),
        Arc::new(UploadVideo::new(api, context.media.clone(), context.publish_wait)),
    ]
}

fn user_schema() -> Value {
    json!({"type": "object", "properties": {
        "id": {"type": "string"}, "name": {"type": "string"}, "username": {"type": "string"}
    }, "required": ["id", "username"]})
}

fn tweets_page() -> Value {
    json!({"type": "object", "properties": {
        "data": {"type": "array", "items": {"type": "object", "properties": {"id": {"type": "string"}, "text": {"type": "string"}}, "required": ["id"]}},
        "meta": {"type": "object", "properties": {"result_count": {"type": "integer"}, "next_token": {"type": "string"}}}
    }, "required": ["meta"]})
}

/// X's ids are 64-bit: strings, or JSON numbers would round them.
fn x_id(description: &str) -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": 19, "description": description})
}

fn time_arg(name: &'static str, description: &str) -> Arg {
    Arg::new(name, json!({"type": "string", "minLength": 20, "maxLength": 30, "description": description})).logged().in_query()
}

fn get_me() -> HttpToolSpec {
    HttpToolSpec::get(
        ToolSpec::new(
            "get_me",
            "X: get the connected account",
            format!("Returns the connected X account (id, name, username) as {{\"data\": {{...}}}}. Use it to check that the connection works. One request; {BILLING}."),
            Annotations::READ,
        )
        .output(json!({"type": "object", "properties": {"data": user_schema()}, "required": ["data"]})),
        "/users/me",
    )
    .operation(dialect::GET_ME)
}

fn user_fields_arg() -> Arg {
    Arg::new("user_fields", string(&format!("Comma-separated user fields X returns (default {USER_FIELDS}).")))
        .logged()
        .in_query()
        .renamed("user.fields")
}

/// `get_user_profile`: the connected account, or one named by username or id.
struct UserProfile {
    definition: ToolDefinition,
    me: HttpTool<XDialect>,
    by_username: HttpTool<XDialect>,
    by_id: HttpTool<XDialect>,
}

impl UserProfile {
    fn new(api: Arc<HttpApi<XDialect>>) -> Self {
        let mut spec = ToolSpec::new(
            "get_user_profile",
            "X: get a user's profile",
            format!(
                "Returns an X user's profile as {{\"data\": {{id, name, username, description, public_metrics, created_at, verified, …}}}}: \
                 the connected account when neither `username` nor `user_id` is given, else the user named by one of them (not both). \
                 One request; {BILLING}."
            ),
            Annotations::READ,
        )
        .arg(Arg::new("username", json!({"type": "string", "minLength": 1, "maxLength": 15, "description": "The user's handle without @, e.g. XDevelopers."})).logged())
        .arg(Arg::new("user_id", x_id("The user's numeric id, e.g. 2244994945.")).logged())
        .arg(user_fields_arg())
        .output(json!({"type": "object", "properties": {"data": user_schema()}, "required": ["data"]}));
        let definition = spec.take_definition(Platform::Twitter);
        let row = |path: &'static str, operation: &'static str, key: Option<Arg>| {
            let mut spec = ToolSpec::new("get_user_profile", "X: get a user's profile", "", Annotations::READ).arg(user_fields_arg());
            if let Some(key) = key {
                spec = spec.arg(key);
            }
            HttpTool::new(HttpToolSpec::get(spec, path).operation(operation).fixed_query("user.fields", USER_FIELDS), api.clone())
        };
        Self {
            definition,
            me: row("/users/me", dialect::GET_ME, None),
            by_username: row("/users/by/username/{username}", dialect::GET_USER_BY_USERNAME, Some(Arg::new("username", string("")).required().in_path())),
            by_id: row("/users/{id}", dialect::GET_USER_BY_ID, Some(Arg::new("user_id", string("")).required().in_path().renamed("id"))),
        }
    }
}

#[async_trait]
impl Tool for UserProfile {
    fn definition(&self) -> &ToolDefinition {
        &self.definition
    }

    async fn call(&self, credential: &Secret<Value>, arguments: Map<String, Value>) -> Result<ToolOutput, ToolFailure> {
        let given = |name: &str| arguments.get(name).and_then(Value::as_str).is_some_and(|v| !v.trim().is_empty());
        match (given("username"), given("user_id")) {
            (true, true) => Err(ToolFailure::invalid_arguments("Give `username` or `user_id`, not both.")),
            (true, false) => {
                let handle = arguments.get("username").and_then(Value::as_str).unwrap_or_default().trim();
                let handle = handle.strip_prefix('@').unwrap_or(handle);
                if !handle.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') || handle.is_empty() {
                    return Err(ToolFailure::invalid_arguments("`username` is an X handle: letters, digits and _ only."));
                }
                let mut arguments = arguments.clone();
                arguments.insert("username".to_owned(), json!(handle));
                self.by_username.call(credential, arguments).await
            }
            (false, true) => {
                let id = arguments.get("user_id").and_then(Value::as_str).unwrap_or_default();
                if !id.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(ToolFailure::invalid_arguments("`user_id` is a numeric X user id (digits only)."));
                }
                self.by_id.call(credential, arguments).await
            }
            (false, false) => self.me.call(credential, arguments).await,
        }
    }
}

fn user_tweets() -> HttpToolSpec {
    HttpToolSpec::get(
        ToolSpec::new(
            "get_user_tweets",
            "X: list a user's posts",
            format!(
                "Lists a user's most recent posts (X keeps up to 3,200) as {{\"data\": [{{id, text, created_at, public_metrics, …}}], \
                 \"meta\": {{result_count, next_token}}}}. For the next page call again with `pagination_token` set to meta.next_token. \
                 One request per page, and X counts every post returned; {BILLING}."
            ),
            Annotations::READ,
        )
        .arg(Arg::new("user_id", x_id("The user's numeric id (twitter_get_user_profile returns it).")).required().logged().in_path().renamed("id"))
        .arg(Arg::new("max_results", integer_between(5, 100, "Posts per page, 5 to 100 (X's default 10).")).logged().in_query())
        .arg(Arg::new("pagination_token", string("meta.next_token of the previous page.")).logged().in_query())
        .arg(Arg::new("exclude", json!({"type": "string", "enum": ["retweets", "replies", "retweets,replies"], "description": "Leave out reposts, replies or both."})).logged().in_query())
        .arg(time_arg("start_time", "Only posts from this time on, RFC 3339 (e.g. 2026-01-31T00:00:00Z)."))
        .arg(time_arg("end_time", "Only posts before this time, RFC 3339."))
        .arg(Arg::new("tweet_fields", string(&format!("Comma-separated post fields (default {TWEET_FIELDS})."))).logged().in_query().renamed("tweet.fields"))
        .output(tweets_page()),
        "/users/{id}/tweets",
    )
    .operation(dialect::GET_USER_TWEETS)
    .fixed_query("tweet.fields", TWEET_FIELDS)
}

fn search_tweets() -> HttpToolSpec {
    HttpToolSpec::get(
        ToolSpec::new(
            "search_tweets",
            "X: search recent posts",
            format!(
                "Searches posts from the last 7 days with X's operator syntax (e.g. `from:XDevelopers -is:retweet has:media \"exact phrase\"`, \
                 `#tag`, `lang:en`) and returns {{\"data\": [...], \"meta\": {{result_count, next_token}}}}. For the next page call again \
                 with `next_token`. One request per page, and X counts every post returned; {BILLING}."
            ),
            Annotations::READ,
        )
        .arg(Arg::new("query", json!({"type": "string", "minLength": 1, "maxLength": 512, "description": "The search query, up to 512 characters, in X's operator syntax."})).required().logged().in_query())
        .arg(Arg::new("max_results", integer_between(10, 100, "Posts per page, 10 to 100 (X's default 10).")).logged().in_query())
        .arg(Arg::new("next_token", string("meta.next_token of the previous page.")).logged().in_query())
        .arg(time_arg("start_time", "Only posts from this time on (within the last 7 days), RFC 3339."))
        .arg(time_arg("end_time", "Only posts before this time, RFC 3339."))
        .arg(Arg::new("sort_order", json!({"type": "string", "enum": ["recency", "relevancy"], "description": "Newest first (recency) or most relevant first."})).logged().in_query())
        .arg(Arg::new("tweet_fields", string(&format!("Comma-separated post fields (default {TWEET_FIELDS})."))).logged().in_query().renamed("tweet.fields"))
        .output(tweets_page()),
        "/tweets/search/recent",
    )
    .operation(dialect::SEARCH_RECENT)
    .fixed_query("tweet.fields", TWEET_FIELDS)
}

/// `create_tweet`: refuses combinations X refuses (poll with media or a quote) before any request.
struct CreateTweet {
    tool: HttpTool<XDialect>,
}

impl CreateTweet {
    fn new(api: Arc<HttpApi<XDialect>>) -> Self {
        let spec = ToolSpec::new(
            "create_tweet",
            "X: post",
            format!(
                "Publishes a post from the connected account and returns {{\"data\": {{id, text}}}}. Give `text`, `media_ids` or both; \
                 optionally reply to a post, quote one, or add a poll. A poll cannot go with media or a quote, and media cannot go \
                 with a quote. Videos must first be uploaded with twitter_upload_video (use its media_id once it is ready). Two \
                 calls make two posts. One request; {BILLING}."
            ),
            Annotations::WRITE,
        )
        .arg(Arg::new("text", json!({"type": "string", "minLength": 1, "maxLength": 25000, "description": "The post's text (280 characters for most accounts; URLs count 23)."})))
        .arg(Arg::new("reply_to", x_id("The id of a post to reply to.")).logged().renamed("reply.in_reply_to_tweet_id"))
        .arg(Arg::new("quote_tweet_id", x_id("The id of a post to quote.")).logged())
        .arg(Arg::new("media_ids", json!({"type": "array", "minItems": 1, "maxItems": 4, "items": {"type": "string", "minLength": 1, "maxLength": 19},
            "description": "Uploaded media ids: up to 4 images, or 1 video or GIF (twitter_upload_video's media_id)."})).logged().renamed("media.media_ids"))
        .arg(Arg::new("poll_options", json!({"type": "array", "minItems": 2, "maxItems": 4, "items": {"type": "string", "minLength": 1, "maxLength": 25},
            "description": "A poll's 2 to 4 choices, up to 25 characters each; needs poll_duration_minutes."})).renamed("poll.options"))
        .arg(Arg::new("poll_duration_minutes", integer_between(5, 10080, "How long the poll runs, 5 minutes to 7 days (10080).")).logged().renamed("poll.duration_minutes"))
        .output(json!({"type": "object", "properties": {"data": {"type": "object", "properties": {
            "id": {"type": "string"}, "text": {"type": "string"}}, "required": ["id"]}}, "required": ["data"]}));
        Self { tool: HttpTool::new(HttpToolSpec::post(spec, "/tweets").operation(dialect::CREATE_TWEET), api) }
    }
}

#[async_trait]
impl Tool for CreateTweet {
    fn definition(&self) -> &ToolDefinition {
        self.tool.definition()
    }

    async fn call(&self, credential: &Secret<Value>, arguments: Map<String, Value>) -> Result<ToolOutput, ToolFailure> {
        check_post(&arguments)?;
        self.tool.call(credential, arguments).await
    }
}

/// X's rules for a post's parts, checked before the (billed) request.
fn check_post(arguments: &Map<String, Value>) -> Result<(), ToolFailure> {
    let has = |name: &str| arguments.get(name).is_some_and(|v| !v.is_null());
    let text = arguments.get("text").and_then(Value::as_str).is_some_and(|t| !t.trim().is_empty());
    if !text && !has("media_ids") {
        return Err(ToolFailure::invalid_arguments("Give `text`, `media_ids` or both."));
    }
    if has("poll_options") != has("poll_duration_minutes") {
        return Err(ToolFailure::invalid_arguments("A poll needs both `poll_options` and `poll_duration_minutes`."));
    }
    if has("poll_options") && has("media_ids") {
        return Err(ToolFailure::invalid_arguments("A post cannot have both a poll and media: give `poll_options` or `media_ids`."));
    }
    if has("poll_options") && has("quote_tweet_id") {
        return Err(ToolFailure::invalid_arguments("A post cannot have both a poll and a quote."));
    }
    if has("media_ids") && has("quote_tweet_id") {
        return Err(ToolFailure::invalid_arguments("A post cannot have both media and a quote."));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn exclusive_parts_of_a_post_are_refused() {
        assert!(check_post(&args(json!({"text": "hi"}))).is_ok());
        assert!(check_post(&args(json!({"media_ids": ["1"]}))).is_ok());
        assert!(check_post(&args(json!({"text": "q", "poll_options": ["a", "b"], "poll_duration_minutes": 60}))).is_ok());
        for bad in [
            json!({}),
            json!({"text": "  "}),
            json!({"text": "q", "poll_options": ["a", "b"]}),
            json!({"text": "q", "poll_options": ["a", "b"], "poll_duration_minutes": 60, "media_ids": ["1"]}),
            json!({"text": "q", "poll_options": ["a", "b"], "poll_duration_minutes": 60, "quote_tweet_id": "1"}),
            json!({"text": "q", "media_ids": ["1"], "quote_tweet_id": "1"}),
        ] {
            let failure = check_post(&args(bad.clone())).expect_err(&bad.to_string());
            assert_eq!(failure.kind, squaremcp_core::FailureKind::InvalidInput);
        }
    }
}
