//! The Redis wire protocol (RESP): parsing client requests and encoding replies.
//!
//! This module owns everything about bytes on the wire and nothing else; it depends on no other
//! part of the crate, so the server loop, the command layer and tests can all use it freely.
//!
//! - [`request`]: [`RequestParser`] turns the bytes clients send (RESP multibulk arrays and inline
//!   commands) into argument lists, resumably and zero-copy, with Redis's own protocol error texts.
//! - [`reply`]: [`Reply`] and its encoder for RESP2 and RESP3, plus Redis's two double
//!   formats: [`format_double`] (replies, `%.17g`) and [`format_score`] (stored scores).
//! - [`errors`]: [`ProtocolError`], the fatal error a malformed request produces.
//!
//! The encoder's tests use the `redis-protocol` crate (a dev-dependency only) as an independent
//! oracle: random nested replies are encoded here and decoded there, and must come back equal.

pub mod errors;
pub mod reply;
pub mod request;

pub use errors::ProtocolError;
pub use reply::{format_double, format_score, Reply, RespVersion};
pub use request::{parse_integer, Limits, RequestParser};
