//! [`ProtocolError`]: a malformed request, with the exact texts Redis uses for each case.
//!
//! A protocol error is fatal for the connection: the server sends [`ProtocolError::to_reply`]
//! (`-ERR Protocol error: ...`) and closes it, as Redis does.

use super::reply::Reply;

/// A request that breaks the protocol. `Display` gives the full text, e.g.
/// `Protocol error: invalid bulk length`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ProtocolError(String);

impl ProtocolError {
    /// The full error text, e.g. `Protocol error: invalid bulk length`.
    pub fn message(&self) -> &str {
        &self.0
    }

    /// The reply Redis sends before closing the connection: `-ERR <message>`.
    pub fn to_reply(&self) -> Reply {
        Reply::error(format!("ERR {}", self.0))
    }

    pub(crate) fn invalid_multibulk_length() -> Self {
        Self("Protocol error: invalid multibulk length".to_owned())
    }

    /// `found` is shown as Redis's `%c` would, one character per byte (Latin-1 for bytes >= 0x80).
    pub(crate) fn expected_dollar(found: u8) -> Self {
        Self(format!(
            "Protocol error: expected '$', got '{}'",
            char::from(found)
        ))
    }

    pub(crate) fn invalid_bulk_length() -> Self {
        Self("Protocol error: invalid bulk length".to_owned())
    }

    pub(crate) fn unauthenticated_multibulk_length() -> Self {
        Self("Protocol error: unauthenticated multibulk length".to_owned())
    }

    pub(crate) fn unauthenticated_bulk_length() -> Self {
        Self("Protocol error: unauthenticated bulk length".to_owned())
    }

    pub(crate) fn too_big_mbulk_count_string() -> Self {
        Self("Protocol error: too big mbulk count string".to_owned())
    }

    pub(crate) fn too_big_bulk_count_string() -> Self {
        Self("Protocol error: too big bulk count string".to_owned())
    }

    pub(crate) fn too_big_inline_request() -> Self {
        Self("Protocol error: too big inline request".to_owned())
    }

    pub(crate) fn unbalanced_quotes() -> Self {
        Self("Protocol error: unbalanced quotes in request".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_the_full_redis_text() {
        assert_eq!(
            ProtocolError::invalid_bulk_length().to_string(),
            "Protocol error: invalid bulk length"
        );
        assert_eq!(
            ProtocolError::expected_dollar(b':').to_string(),
            "Protocol error: expected '$', got ':'"
        );
    }

    #[test]
    fn reply_is_prefixed_with_err() {
        assert_eq!(
            ProtocolError::unbalanced_quotes().to_reply(),
            Reply::error("ERR Protocol error: unbalanced quotes in request")
        );
    }
}
