//! Authentication: Basic credentials (argon2 hashes from `auth.users`) exchanged in Handshake for
//! expiring Bearer tokens; static tokens from `auth.tokens`; off when neither is configured.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::password_hash::SaltString;
use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use tonic::metadata::MetadataMap;

use crate::error::Error;
use crate::settings::AuthSection;

/// Who may call, and the tokens handed out.
#[derive(Debug)]
pub struct Auth {
    users: HashMap<String, String>,
    static_tokens: HashSet<String>,
    issued: Mutex<HashMap<String, (String, Instant)>>,
    ttl: Duration,
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
    /// From the `auth` section.
    pub fn new(section: &AuthSection) -> Self {
        Self {
            users: section.user_list().into_iter().collect(),
            static_tokens: section.token_list().into_iter().collect(),
            issued: Mutex::new(HashMap::new()),
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
                Ok(Login::Token(self.issue(user)))
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
        let issued = self.issued.lock().expect("token lock");
        match issued.get(token) {
            Some((user, expires)) if *expires > Instant::now() => Ok(user.clone()),
            Some(_) => Err(Error::Unauthenticated("token expired: log in again".into())),
            None => Err(Error::Unauthenticated("unknown token".into())),
        }
    }

    fn issue(&self, user: String) -> String {
        let token = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
        let now = Instant::now();
        let mut issued = self.issued.lock().expect("token lock");
        // Expired tokens are kept for one more lifetime so their holders learn why they failed.
        issued.retain(|_, (_, expires)| *expires + self.ttl > now);
        issued.insert(token.clone(), (user, now + self.ttl));
        token
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

    fn auth(ttl: u64) -> Auth {
        let hash = hash_password("s3cret").unwrap();
        Auth::new(&AuthSection {
            users: format!("alice:{hash}"),
            tokens: "static-1".into(),
            token_ttl_secs: ttl,
        })
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
