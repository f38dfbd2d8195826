//! TikTok's tools: three rows of data run by the kit's generic HTTP handler, and
//! `create_video` ([`super::publish`]), which checks, uploads and waits.

use std::sync::Arc;

use serde_json::{Value, json};
use squaremcp_core::tool::{Annotations, Tool};

use super::dialect::{self, TiktokDialect};
use super::publish::CreateVideo;
use crate::kit::{Arg, HttpApi, HttpTool, HttpToolSpec, PlatformContext, ToolSpec};

/// Every TikTok tool, sharing one client.
pub(super) fn build(context: &PlatformContext) -> Vec<Arc<dyn Tool>> {
    let api = Arc::new(HttpApi::new(
        context.http.clone(),
        context.origin.clone(),
        TiktokDialect,
    ));
    let [profile, creator_info, status] = rows();
    let tool = |row| -> Arc<dyn Tool> { Arc::new(HttpTool::new(row, api.clone())) };
    let create = Arc::new(CreateVideo::new(
        api.clone(),
        context,
        creator_info.clone(),
        status.clone(),
    ));
    vec![tool(profile), tool(creator_info), create, tool(status)]
}

/// `{publish_id}` as TikTok returns it (`v_pub_file~v2-1.…`, `v_inbox_url~…`).
pub(super) fn publish_id() -> Arg {
    Arg::new(
        "publish_id",
        json!({"type": "string", "minLength": 1, "maxLength": 256,
        "description": "The publish_id tiktok_create_video returned."}),
    )
    .required()
    .logged()
}

/// The rows: profile, creator info, status.
pub(super) fn rows() -> [HttpToolSpec; 3] {
    [
        HttpToolSpec::get(
            ToolSpec::new(
                "get_profile",
                "TikTok: get the connected account",
                "Returns the connected TikTok account as {\"user\": {open_id, union_id, avatar_url, display_name}} (scope \
                 user.info.basic). Use it to check that the connection works.",
                Annotations::READ,
            )
            .output(json!({
                "type": "object",
                "properties": {"user": {"type": "object", "properties": {
                    "open_id": {"type": "string"}, "union_id": {"type": "string"},
                    "avatar_url": {"type": "string"}, "display_name": {"type": "string"}
                }, "required": ["open_id"]}},
                "required": ["user"]
            })),
            "/user/info/",
        )
        .operation(dialect::GET_USER_INFO)
        // The fields `user.info.basic` grants; the others need scopes the gateway does not ask for.
        .fixed_query("fields", "open_id,union_id,avatar_url,display_name"),
        HttpToolSpec::post(
            ToolSpec::new(
                "get_creator_info",
                "TikTok: get what the creator may post",
                "Returns the creator's nickname and username, the privacy levels they may post with \
                 (privacy_level_options), whether comments, duets and stitches are off, and the longest video in seconds \
                 (max_video_post_duration_sec). TikTok requires showing these before a post: the person must pick the \
                 privacy level. Scope video.publish; TikTok allows 20 calls a minute.",
                Annotations::READ,
            )
            .output(creator_info_schema()),
            "/post/publish/creator_info/query/",
        )
        .operation(dialect::CREATOR_INFO),
        HttpToolSpec::post(
            ToolSpec::new(
                "get_video_status",
                "TikTok: get a video post's status",
                "Returns the status of a post started with tiktok_create_video: PROCESSING_UPLOAD, PROCESSING_DOWNLOAD, \
                 SEND_TO_USER_INBOX (an inbox upload is ready for the creator to finish in the app), PUBLISH_COMPLETE or \
                 FAILED (with fail_reason). Public posts go through moderation, so publicaly_available_post_id (TikTok's \
                 spelling) may come minutes to hours later. TikTok allows 30 calls a minute.",
                Annotations::READ,
            )
            .arg(publish_id())
            .output(json!({
                "type": "object",
                "properties": {"status": {"type": "string"}, "fail_reason": {"type": "string"},
                    "publicaly_available_post_id": {"type": "array"}, "uploaded_bytes": {"type": "integer"},
                    "downloaded_bytes": {"type": "integer"}},
                "required": ["status"]
            })),
            "/post/publish/status/fetch/",
        )
        .operation(dialect::GET_STATUS),
    ]
}

fn creator_info_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "creator_avatar_url": {"type": "string"}, "creator_username": {"type": "string"},
            "creator_nickname": {"type": "string"},
            "privacy_level_options": {"type": "array", "items": {"type": "string"}},
            "comment_disabled": {"type": "boolean"}, "duet_disabled": {"type": "boolean"},
            "stitch_disabled": {"type": "boolean"}, "max_video_post_duration_sec": {"type": "integer"}
        },
        "required": ["privacy_level_options"]
    })
}
