//! Authentication: Basic credentials and the HS256 session token (JWT) `auth.login` hands out. Clients decode the
//! token without verifying it and read `api_version`, `exp` and `feature_set` from it, so those claims matter.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::error::ApiError;
use crate::store::Identity;
use crate::time::Ts;

/// The claims of a session token, with the names clearml-server uses.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    /// Who the token is for: user and company ids and names, and the role.
    pub identity: Identity,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Expiry, seconds since the epoch; clients refresh before it (clearml-agent with 12 h to spare).
    pub exp: i64,
    /// A fresh random id per login (32 hex digits), as the server gives each session.
    pub session_id: String,
    /// The newest API version the server speaks; the SDK picks its URL version from it.
    pub api_version: String,
    /// The server version the emulator claims to be (clients log it).
    pub server_version: String,
    /// `basic` for the open-source server; changes the glue's enqueue logic.
    pub feature_set: String,
    /// Always `Bearer`: how the token is to be presented.
    pub auth_type: String,
}

/// Signs `claims` as an HS256 JWT.
pub fn issue(secret: &[u8], claims: &Claims) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
    let signing_input = format!("{header}.{payload}");
    let sig = URL_SAFE_NO_PAD.encode(sign(secret, signing_input.as_bytes()));
    format!("{signing_input}.{sig}")
}

fn sign(secret: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail here; fall back to an empty tag anyway
    // rather than panic on a runtime path.
    match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mut mac) => {
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

/// Checks signature and expiry; any failure is 401/30, as the server answers for bad, expired or revoked tokens.
pub fn verify(secret: &[u8], token: &str, now: Ts) -> Result<Claims, ApiError> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ApiError::invalid_token("malformed token"));
    };
    let sig = URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| ApiError::invalid_token("malformed signature"))?;
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret).map_err(|_| ApiError::invalid_token("bad key"))?;
    mac.update(format!("{h}.{p}").as_bytes());
    mac.verify_slice(&sig)
        .map_err(|_| ApiError::invalid_token("Signature verification failed"))?;
    let payload = URL_SAFE_NO_PAD
        .decode(p)
        .map_err(|_| ApiError::invalid_token("malformed payload"))?;
    let claims: Claims = serde_json::from_slice(&payload)
        .map_err(|_| ApiError::invalid_token("malformed payload"))?;
    if claims.exp <= now.unix_secs() {
        return Err(ApiError::invalid_token("Signature has expired"));
    }
    Ok(claims)
}

/// How a call authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authenticated {
    /// `Authorization: Basic` with one of the configured key pairs (how clients call `auth.login`).
    Basic {
        /// The access key that matched.
        access_key: String,
    },
    /// A session token that verified (`Authorization: Bearer`, or the session cookie), with its claims.
    Bearer(Box<Claims>),
}

/// Checks the `Authorization` header (or the session cookie when there is no header) against the configured
/// key pairs and the token secret. Error codes follow the server: 401/20, 401/10, 401/21, 401/22, 401/30.
pub fn authenticate(
    header: Option<&str>,
    cookie_token: Option<&str>,
    credentials: &[(String, String)],
    secret: &[u8],
    now: Ts,
) -> Result<Authenticated, ApiError> {
    let owned;
    let header = match (header, cookie_token) {
        (Some(h), _) => h,
        (None, Some(t)) => {
            owned = format!("Bearer {t}");
            &owned
        }
        (None, None) => return Err(ApiError::no_credentials()),
    };
    let (scheme, data) = header.split_once(' ').unwrap_or((header, ""));
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => {
            let decoded = STANDARD
                .decode(data.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| ApiError::bad_credentials("failed decoding basic auth"))?;
            let (key, secret_key) = decoded.split_once(':').ok_or_else(|| {
                ApiError::bad_credentials("missing access_key:secret_key separator")
            })?;
            if credentials.iter().any(|(k, s)| k == key && s == secret_key) {
                Ok(Authenticated::Basic {
                    access_key: key.to_owned(),
                })
            } else {
                Err(ApiError::invalid_credentials())
            }
        }
        "bearer" => verify(secret, data.trim(), now).map(|c| Authenticated::Bearer(Box::new(c))),
        _ => Err(ApiError::bad_auth_type()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> Claims {
        Claims {
            identity: Identity::default(),
            iat: 0,
            exp,
            session_id: "s".into(),
            api_version: "2.31".into(),
            server_version: "2.0.0".into(),
            feature_set: "basic".into(),
            auth_type: "Bearer".into(),
        }
    }

    #[test]
    fn issued_tokens_verify_until_they_expire() {
        let t = issue(b"k", &claims(1000));
        assert_eq!(verify(b"k", &t, Ts(999_000)).unwrap(), claims(1000));
        assert_eq!(verify(b"k", &t, Ts(1_000_000)).unwrap_err().subcode, 30);
        assert_eq!(verify(b"other", &t, Ts(0)).unwrap_err().subcode, 30);
        assert_eq!(verify(b"k", "garbage", Ts(0)).unwrap_err().subcode, 30);
    }

    #[test]
    fn header_errors_have_the_server_codes() {
        let creds = vec![("ak".to_owned(), "sk".to_owned())];
        let code = |h: Option<&str>| {
            authenticate(h, None, &creds, b"k", Ts(0)).map_err(|e| (e.code, e.subcode))
        };
        let basic = |s: &str| format!("Basic {}", STANDARD.encode(s));
        assert_eq!(code(None), Err((401, 20)));
        assert_eq!(code(Some("Digest abc")), Err((401, 10)));
        assert_eq!(code(Some("Basic !!!")), Err((401, 21)));
        assert_eq!(code(Some(&basic("ak:wrong"))), Err((401, 22)));
        assert_eq!(code(Some("Bearer x.y.z")), Err((401, 30)));
        assert!(code(Some(&basic("ak:sk"))).is_ok());
    }

    #[test]
    fn the_session_cookie_works_without_a_header() {
        let t = issue(b"k", &claims(10));
        assert!(authenticate(None, Some(&t), &[], b"k", Ts(0)).is_ok());
    }
}
