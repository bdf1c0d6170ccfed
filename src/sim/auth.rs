//! JWT (HS256) issue and verification, bound to the caller's IP address.
//!
//! Owns: the signing secret (random per start; `rotate` invalidates every token issued so
//! far), token issue, and the checks in the profile's order (signature, expiry, IP).
//! Must not: know users' rights or HTTP.

use std::net::IpAddr;
use std::sync::RwLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::error::ApiError;

type HmacSha256 = Hmac<Sha256>;

const HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

/// The claims we put in a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub ip: String,
    pub iat: u64,
    pub exp: u64,
    pub jti: String,
}

/// Issues and verifies tokens.
#[derive(Debug)]
pub struct TokenSigner {
    secret: RwLock<[u8; 32]>,
    ttl: Duration,
    header_b64: String,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn fresh_secret() -> [u8; 32] {
    let mut s = [0u8; 32];
    rand::rng().fill_bytes(&mut s);
    s
}

impl TokenSigner {
    pub fn new(ttl: Duration) -> Self {
        Self {
            secret: RwLock::new(fresh_secret()),
            ttl,
            header_b64: URL_SAFE_NO_PAD.encode(HEADER),
        }
    }

    /// Make every token issued so far invalid (as a server restart does).
    pub fn rotate(&self) {
        let mut guard = self.secret.write().unwrap_or_else(|p| p.into_inner());
        *guard = fresh_secret();
    }

    fn mac(&self) -> HmacSha256 {
        let secret = *self.secret.read().unwrap_or_else(|p| p.into_inner());
        // HMAC accepts keys of any length.
        <HmacSha256 as Mac>::new_from_slice(&secret).unwrap_or_else(|_| unreachable!())
    }

    /// A token for `user` calling from `ip`.
    pub fn issue(&self, user: &str, ip: IpAddr) -> String {
        let iat = now_secs();
        let claims = Claims {
            sub: user.to_owned(),
            ip: ip.to_string(),
            iat,
            exp: iat + self.ttl.as_secs(),
            jti: format!("{:016x}", rand::rng().next_u64()),
        };
        let payload = serde_json::to_vec(&claims).unwrap_or_default();
        let signing_input = format!("{}.{}", self.header_b64, URL_SAFE_NO_PAD.encode(payload));
        let mut mac = self.mac();
        mac.update(signing_input.as_bytes());
        let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{signing_input}.{sig}")
    }

    /// Verify a token presented from `ip`; the claims when valid.
    pub fn verify(&self, token: &str, ip: IpAddr) -> Result<Claims, ApiError> {
        let (signing_input, sig) = token.rsplit_once('.').ok_or_else(ApiError::token_invalid)?;
        let (header, payload) = signing_input
            .split_once('.')
            .ok_or_else(ApiError::token_invalid)?;
        if header != self.header_b64 {
            return Err(ApiError::token_invalid());
        }
        let sig = URL_SAFE_NO_PAD
            .decode(sig)
            .map_err(|_| ApiError::token_invalid())?;
        let mut mac = self.mac();
        mac.update(signing_input.as_bytes());
        mac.verify_slice(&sig)
            .map_err(|_| ApiError::token_invalid())?;
        let payload = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| ApiError::token_invalid())?;
        let claims: Claims =
            serde_json::from_slice(&payload).map_err(|_| ApiError::token_invalid())?;
        if now_secs() >= claims.exp {
            return Err(ApiError::token_expired());
        }
        if claims.ip.parse::<IpAddr>().ok() != Some(ip) {
            return Err(ApiError::token_ip());
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn verify_table() {
        let signer = TokenSigner::new(Duration::from_secs(3600));
        let token = signer.issue("demo", ip("127.0.0.1"));
        assert_eq!(signer.verify(&token, ip("127.0.0.1")).unwrap().sub, "demo");
        let mut tampered = token.clone();
        tampered.pop();
        tampered.push(if token.ends_with('A') { 'B' } else { 'A' });
        let cases = [
            (token.clone(), "127.0.0.2", "token_ip_mismatch"),
            (tampered, "127.0.0.1", "token_invalid"),
            ("garbage".to_owned(), "127.0.0.1", "token_invalid"),
            ("a.b.c".to_owned(), "127.0.0.1", "token_invalid"),
        ];
        for (t, from, code) in cases {
            assert_eq!(signer.verify(&t, ip(from)).unwrap_err().code, code, "{t}");
        }
        signer.rotate();
        assert_eq!(
            signer.verify(&token, ip("127.0.0.1")).unwrap_err().code,
            "token_invalid"
        );
    }

    #[test]
    fn zero_ttl_is_expired_and_claims_are_readable() {
        let signer = TokenSigner::new(Duration::ZERO);
        let token = signer.issue("demo", ip("127.0.0.1"));
        assert_eq!(
            signer.verify(&token, ip("127.0.0.1")).unwrap_err().code,
            "token_expired"
        );
        let payload = token.split('.').nth(1).unwrap();
        let claims: Claims =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        assert_eq!(claims.ip, "127.0.0.1");
        assert_eq!(claims.exp, claims.iat);
    }
}
