//! A local stand-in for Discord's bot REST API v10.
