//! The five Telegram tools, one small struct each: its definition and how its arguments become a
//! Bot API call. Transport, envelope and errors live in [`super::api`].

mod get_chat;
mod get_me;
mod get_updates;
mod send_message;
mod send_photo;

pub(super) use get_chat::GetChat;
pub(super) use get_me::GetMe;
pub(super) use get_updates::GetUpdates;
pub(super) use send_message::SendMessage;
pub(super) use send_photo::SendPhoto;
