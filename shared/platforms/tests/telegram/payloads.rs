//! Success results shaped like the real Bot API's (types User, Message, PhotoSize, Update, ChatFullInfo).

use serde_json::{Value, json};

pub fn bot_user() -> Value {
    json!({
        "id": 7012345678_i64,
        "is_bot": true,
        "first_name": "SquareMCP Test Bot",
        "username": "squaremcp_test_bot",
        "can_join_groups": true,
        "can_read_all_group_messages": false,
        "supports_inline_queries": false,
        "can_connect_to_business": false,
        "has_main_web_app": false
    })
}

fn bot_sender() -> Value {
    json!({ "id": 7012345678_i64, "is_bot": true, "first_name": "SquareMCP Test Bot", "username": "squaremcp_test_bot" })
}

fn private_chat() -> Value {
    json!({ "id": 987654321, "first_name": "Ada", "last_name": "Lovelace", "username": "ada_l", "type": "private" })
}

pub fn sent_text_message() -> Value {
    json!({
        "message_id": 4711,
        "from": bot_sender(),
        "chat": private_chat(),
        "date": 1767225600,
        "text": "Build finished: all green",
        "link_preview_options": { "is_disabled": true }
    })
}

pub fn sent_photo_message() -> Value {
    json!({
        "message_id": 4712,
        "from": bot_sender(),
        "chat": { "id": -1001234567890_i64, "title": "SquareMCP Releases", "username": "squaremcp_releases", "type": "channel" },
        "date": 1767225660,
        "photo": [
            { "file_id": "AgACAgQAAxkDAAIScWd0Sm9mAAFcdwQ2Y3Z0Ejq3dHbQAAK9tzEbPlKpU4x6c0QpPKbhAQADAgADcwADNgQ", "file_unique_id": "AQADvbcxGz5SqVN4", "file_size": 1422, "width": 90, "height": 60 },
            { "file_id": "AgACAgQAAxkDAAIScWd0Sm9mAAFcdwQ2Y3Z0Ejq3dHbQAAK9tzEbPlKpU4x6c0QpPKbhAQADAgADbQADNgQ", "file_unique_id": "AQADvbcxGz5SqVNy", "file_size": 18210, "width": 320, "height": 213 },
            { "file_id": "AgACAgQAAxkDAAIScWd0Sm9mAAFcdwQ2Y3Z0Ejq3dHbQAAK9tzEbPlKpU4x6c0QpPKbhAQADAgADeAADNgQ", "file_unique_id": "AQADvbcxGz5SqVN9", "file_size": 80117, "width": 800, "height": 533 }
        ],
        "caption": "Release 1.4 is out",
        "has_media_spoiler": true
    })
}

pub fn update_list() -> Value {
    json!([
        {
            "update_id": 830172001,
            "message": {
                "message_id": 12,
                "from": { "id": 987654321, "is_bot": false, "first_name": "Ada", "last_name": "Lovelace", "username": "ada_l", "language_code": "en" },
                "chat": private_chat(),
                "date": 1767225000,
                "text": "/start",
                "entities": [{ "offset": 0, "length": 6, "type": "bot_command" }]
            }
        },
        {
            "update_id": 830172002,
            "edited_message": {
                "message_id": 13,
                "from": { "id": 987654321, "is_bot": false, "first_name": "Ada", "language_code": "en" },
                "chat": private_chat(),
                "date": 1767225010,
                "edit_date": 1767225030,
                "text": "hello bot (edited)"
            }
        }
    ])
}

pub fn supergroup_full_info() -> Value {
    json!({
        "id": -1001234567890_i64,
        "type": "supergroup",
        "title": "SquareMCP Testers",
        "username": "squaremcp_testers",
        "accent_color_id": 3,
        "max_reaction_count": 11,
        "description": "Where the gateway's bots are tried out",
        "invite_link": "https://t.me/+Xk3fN0tR3alL1nk",
        "permissions": {
            "can_send_messages": true,
            "can_send_audios": true,
            "can_send_documents": true,
            "can_send_photos": true,
            "can_send_videos": true,
            "can_send_video_notes": true,
            "can_send_voice_notes": true,
            "can_send_polls": true,
            "can_send_other_messages": true,
            "can_add_web_page_previews": true,
            "can_change_info": false,
            "can_invite_users": true,
            "can_pin_messages": false,
            "can_manage_topics": false
        },
        "accepted_gift_types": { "unlimited_gifts": false, "limited_gifts": false, "unique_gifts": false, "premium_subscription": false },
        "join_to_send_messages": true
    })
}
