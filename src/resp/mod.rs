//! The Redis protocol (RESP2/RESP3) wire format: [`parse`] turns a client's bytes into commands
//! exactly as Redis 7.0.15 does (multibulk and inline requests, every protocol error), and
//! [`reply`] encodes replies in either protocol version. Neither knows any command.

pub mod parse;
pub mod reply;
