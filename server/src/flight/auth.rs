//! Authentication: Basic credentials (argon2 hashes from `auth.users`) exchanged in Handshake for
//! expiring Bearer tokens; static tokens from `auth.tokens`; off when neither is configured.
//!
//! The tokens Handshake hands out are JWTs signed with HS256 by the first key of
//! `auth.signing_keys` (its id in the header's `kid`) and carry the user and the expiry, so
//! any replica configured with the same keys verifies them without shared state.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use argon2::password_hash::SaltString;
use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use tonic::metadata::MetadataMap;

use crate::error::Error;
use crate::settings::AuthSection;

/// The `iss` claim of the tokens this server signs.
const ISSUER: &str = "stockflight-server";

/// Who may call, and the keys of the tokens handed out.
pub struct Auth {
    users: HashMap<String, String>,
    static_tokens: HashSet<String>,
    signing: (String, EncodingKey),
    verifying: HashMap<String, DecodingKey>,
    validation: Validation,
    ttl: Duration,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("users", &self.users.len())
            .field("static_tokens", &self.static_tokens.len())
            .field("signing_key", &self.signing.0)
            .finish_non_exhaustive()
    }
}

/// The claims of a token.
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    iss: String,
    iat: u64,
    exp: u64,
}

/// The outcome of a Handshake.
#[derive(Debug)]
pub enum Login {
    /// Authentication is off: nothing to hand out.
    Open,
    /// A Bearer token for the following calls.
    Token(String),
}

impl Auth {
    /// From the `auth` section (validated: every signing key is `id:secret`).
    pub fn new(section: &AuthSection) -> Self {
        let mut keys = section.signing_key_list();
        if keys.is_empty() {
            if !section.user_list().is_empty() {
                tracing::warn!(
                    "auth.signing_keys is empty: tokens are signed with a random key and valid on this process only; \
                     give every replica the same auth.signing_keys"
                );
            }
            let secret = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
            keys.push(("local".into(), secret));
        }
        let verifying = keys
            .iter()
            .map(|(id, secret)| (id.clone(), DecodingKey::from_secret(secret.as_bytes())))
            .collect();
        let (id, secret) = &keys[0];
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        Self {
            users: section.user_list().into_iter().collect(),
            static_tokens: section.token_list().into_iter().collect(),
            signing: (id.clone(), EncodingKey::from_secret(secret.as_bytes())),
            verifying,
            validation,
            ttl: Duration::from_secs(section.token_ttl_secs),
        }
    }

    /// Whether calls need credentials.
    pub fn enabled(&self) -> bool {
        !self.users.is_empty() || !self.static_tokens.is_empty()
    }

    /// Checks a call's `authorization: Bearer …` header; returns who called.
    pub fn check(&self, metadata: &MetadataMap) -> Result<String, Error> {
        if !self.enabled() {
            return Ok("anonymous".into());
        }
        match credentials(metadata)? {
            Credentials::Bearer(token) => self.bearer(&token),
            Credentials::Basic(..) => Err(Error::Unauthenticated(
                "Basic credentials are accepted by Handshake only; send the Bearer token it returned".into(),
            )),
            Credentials::None => Err(Error::Unauthenticated(
                "authentication required: no authorization header".into(),
            )),
        }
    }

    /// Handshake: Basic credentials become a new token; a valid Bearer token is confirmed.
    pub async fn login(&self, metadata: &MetadataMap) -> Result<Login, Error> {
        if !self.enabled() {
            return Ok(Login::Open);
        }
        match credentials(metadata)? {
            Credentials::Basic(user, password) => {
                let Some(hash) = self.users.get(&user).cloned() else {
                    return Err(Error::Unauthenticated("invalid user name or password".into()));
                };
                let ok = tokio::task::spawn_blocking(move || verify(&password, &hash))
                    .await
                    .map_err(|e| Error::Internal(e.to_string()))?;
                if !ok {
                    return Err(Error::Unauthenticated("invalid user name or password".into()));
                }
                self.issue(user).map(Login::Token)
            }
            Credentials::Bearer(token) => self.bearer(&token).map(|_| Login::Token(token)),
            Credentials::None => Err(Error::Unauthenticated(
                "authentication required: send Basic credentials in Handshake".into(),
            )),
        }
    }

    fn bearer(&self, token: &str) -> Result<String, Error> {
        if self.static_tokens.contains(token) {
            return Ok("token".into());
        }
        let unknown = || Error::Unauthenticated("unknown token".into());
        let header = jsonwebtoken::decode_header(token).map_err(|_| unknown())?;
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.verifying.get(kid))
            .ok_or_else(|| {
                Error::Unauthenticated("token signed with a key this server does not have (auth.signing_keys)".into())
            })?;
        match jsonwebtoken::decode::<Claims>(token, key, &self.validation) {
            Ok(data) => Ok(data.claims.sub),
            Err(e) if matches!(e.kind(), ErrorKind::ExpiredSignature) => {
                Err(Error::Unauthenticated("token expired: log in again".into()))
            }
            Err(_) => Err(unknown()),
        }
    }

    fn issue(&self, user: String) -> Result<String, Error> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let claims = Claims {
            sub: user,
            iss: ISSUER.into(),
            iat: now,
            exp: now + self.ttl.as_secs(),
        };
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.signing.0.clone());
        jsonwebtoken::encode(&header, &claims, &self.signing.1)
            .map_err(|e| Error::Internal(format!("sign a token: {e}")))
    }
}

/// Base64 with or without padding: Go's Flight client sends Basic credentials unpadded.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

enum Credentials {
    None,
    Basic(String, String),
    Bearer(String),
}

fn credentials(metadata: &MetadataMap) -> Result<Credentials, Error> {
    let Some(value) = metadata.get("authorization") else {
        return Ok(Credentials::None);
    };
    let value = value
        .to_str()
        .map_err(|_| Error::Unauthenticated("authorization header is not text".into()))?;
    if let Some(token) = strip_scheme(value, "bearer") {
        return Ok(Credentials::Bearer(token.trim().to_string()));
    }
    if let Some(encoded) = strip_scheme(value, "basic") {
        let decoded = LENIENT
            .decode(encoded.trim())
            .ok()
            .and_then(|d| String::from_utf8(d).ok())
            .ok_or_else(|| Error::Unauthenticated("malformed Basic credentials".into()))?;
        let (user, password) = decoded
            .split_once(':')
            .ok_or_else(|| Error::Unauthenticated("malformed Basic credentials".into()))?;
        return Ok(Credentials::Basic(user.into(), password.into()));
    }
    Err(Error::Unauthenticated(
        "unsupported authorization scheme (use Basic or Bearer)".into(),
    ))
}

fn strip_scheme<'a>(value: &'a str, scheme: &str) -> Option<&'a str> {
    let (given, rest) = value.split_once(' ')?;
    given.eq_ignore_ascii_case(scheme).then_some(rest)
}

fn verify(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

/// An argon2id PHC string for `password` (what `auth.users` holds).
pub fn hash_password(password: &str) -> Result<String, Error> {
    let salt = SaltString::encode_b64(uuid::Uuid::new_v4().as_bytes()).map_err(|e| Error::Internal(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Internal(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};

    const K1: &str = "k1:0123456789abcdef0123456789abcdef";
    const K2: &str = "k2:fedcba9876543210fedcba9876543210";

    fn auth(ttl: u64) -> Auth {
        auth_with_keys(ttl, "")
    }

    fn auth_with_keys(ttl: u64, keys: &str) -> Auth {
        let hash = hash_password("s3cret").unwrap();
        Auth::new(&AuthSection {
            users: format!("alice:{hash}"),
            tokens: "static-1".into(),
            token_ttl_secs: ttl,
            signing_keys: keys.into(),
        })
    }

    async fn login(auth: &Auth) -> String {
        let basic = format!("Basic {}", STANDARD.encode("alice:s3cret"));
        let Login::Token(token) = auth.login(&header(&basic)).await.unwrap() else {
            panic!("a token")
        };
        token
    }

    fn bearer(token: &str) -> MetadataMap {
        header(&format!("Bearer {token}"))
    }

    #[tokio::test]
    async fn replicas_with_the_same_keys_accept_each_others_tokens_and_rotation_keeps_them() {
        let a = auth_with_keys(60, K1);
        let token = login(&a).await;
        // Another replica, same key: accepts. One mid-rotation (new key first, old kept): accepts.
        assert_eq!(auth_with_keys(60, K1).check(&bearer(&token)).unwrap(), "alice");
        let rotating = auth_with_keys(60, &format!("{K2} {K1}"));
        assert_eq!(rotating.check(&bearer(&token)).unwrap(), "alice");
        // What the rotating replica signs, a replica that does not know the new key yet refuses
        // by name; once the old key is dropped, the old tokens are refused.
        let new_token = login(&rotating).await;
        let err = a.check(&bearer(&new_token)).unwrap_err().to_string();
        assert!(err.contains("key this server does not have"), "{err}");
        assert!(auth_with_keys(60, K2).check(&bearer(&token)).is_err());
        // A per-process random key: valid on that process only.
        assert!(auth(60).check(&bearer(&login(&auth(60)).await)).is_err());
    }

    #[test]
    fn expired_and_tampered_tokens_are_refused() {
        let a = auth_with_keys(60, K1);
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
        let sign = |exp: u64, sub: &str| {
            let mut header = Header::new(Algorithm::HS256);
            header.kid = Some("k1".into());
            let claims = Claims {
                sub: sub.into(),
                iss: ISSUER.into(),
                iat: now - 100,
                exp,
            };
            jsonwebtoken::encode(&header, &claims, &a.signing.1).unwrap()
        };
        assert_eq!(a.check(&bearer(&sign(now + 30, "bob"))).unwrap(), "bob");
        let err = a.check(&bearer(&sign(now - 1, "bob"))).unwrap_err().to_string();
        assert!(err.contains("token expired"), "{err}");
        // Another user's name in a token signed for bob: the signature no longer matches.
        let token = sign(now + 30, "bob");
        let forged_claims = STANDARD_NO_PAD.encode(
            format!(
                r#"{{"sub":"alice","iss":"{ISSUER}","iat":{},"exp":{}}}"#,
                now - 100,
                now + 30
            )
            .as_bytes(),
        );
        let parts: Vec<&str> = token.split('.').collect();
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            forged_claims.replace('+', "-").replace('/', "_"),
            parts[2]
        );
        let err = a.check(&bearer(&forged)).unwrap_err().to_string();
        assert!(err.contains("unknown token"), "{err}");
    }

    fn header(value: &str) -> MetadataMap {
        let mut m = MetadataMap::new();
        m.insert("authorization", value.parse().unwrap());
        m
    }

    #[tokio::test]
    async fn basic_login_gives_a_working_token() {
        let auth = auth(60);
        let basic = format!("Basic {}", STANDARD.encode("alice:s3cret"));
        let Login::Token(token) = auth.login(&header(&basic)).await.unwrap() else {
            panic!("a token")
        };
        assert_eq!(auth.check(&header(&format!("Bearer {token}"))).unwrap(), "alice");
        let wrong = format!("Basic {}", STANDARD.encode("alice:nope"));
        assert!(auth.login(&header(&wrong)).await.is_err());
        assert!(auth.check(&MetadataMap::new()).is_err());
        assert!(auth.check(&header("Bearer static-1")).is_ok());
        assert!(auth.check(&header("Bearer forged")).is_err());
        let unpadded = format!("Basic {}", STANDARD_NO_PAD.encode("alice:s3cret"));
        assert!(auth.login(&header(&unpadded)).await.is_ok());
    }
}
