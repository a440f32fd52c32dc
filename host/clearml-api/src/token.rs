//! The session token: what the client reads from it (without verifying it, like every ClearML client) and when to
//! refresh it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

/// The claims the client relies on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct TokenClaims {
    /// Expiry, seconds since the epoch.
    pub exp: Option<i64>,
    /// Newest API version the server speaks.
    pub api_version: Option<String>,
    /// `basic` on the open-source server.
    pub feature_set: Option<String>,
    /// The server's own version (`2.0.0`), for logs and diagnostics.
    pub server_version: Option<String>,
}

/// Decodes the payload of a JWT. `None` if it is not one (the client then treats it as never expiring and relies
/// on the 401 re-login).
pub fn decode_claims(token: &str) -> Option<TokenClaims> {
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Whether a token expiring at `exp` should be replaced at `now` (both unix seconds): when fewer than `margin`
/// seconds remain. The agent uses 12 h like clearml-agent, so a long-running agent never sends an expired token.
pub fn needs_refresh(exp: Option<i64>, now: i64, margin: i64) -> bool {
    exp.is_some_and(|exp| exp - now < margin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_window() {
        assert!(!needs_refresh(Some(100_000), 0, 43_200));
        assert!(needs_refresh(Some(43_199), 0, 43_200));
        assert!(
            needs_refresh(Some(10), 20, 43_200),
            "an expired token is refreshed"
        );
        assert!(!needs_refresh(None, 0, 43_200));
    }

    #[test]
    fn decodes_payload_without_verifying() {
        let payload = URL_SAFE_NO_PAD
            .encode(br#"{"exp":42,"api_version":"2.31","feature_set":"basic","x":1}"#);
        let c = decode_claims(&format!("h.{payload}.sig")).unwrap();
        assert_eq!(c.exp, Some(42));
        assert_eq!(c.api_version.as_deref(), Some("2.31"));
        assert_eq!(c.feature_set.as_deref(), Some("basic"));
        assert!(decode_claims("opaque").is_none());
    }
}
