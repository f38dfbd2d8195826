//! A local stand-in for the Telegram Bot API (`POST /bot<token>/<method>`).
