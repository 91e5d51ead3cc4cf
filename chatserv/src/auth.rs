//! Signed logins: HS256 JSON Web Tokens (RFC 7519, RFC 7515) checked
//! before the upgrade.
//!
//! Only HS256 is accepted: the algorithm is fixed by the server, never
//! taken from the token (a token saying `alg: none`, or naming any other
//! algorithm, is refused). The signature is compared in constant time
//! (`hmac`'s `verify_slice`). `sub` is the user name (the same rules as
//! `?user=`), `exp` is required, `nbf` is checked when present and `aud`
//! when the server has an audience; each with [`LEEWAY`] for clock skew.
//! Refusals name the reason and never repeat the token.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

/// Allowed clock difference between the token's issuer and this server.
pub const LEEWAY: u64 = 30;

/// Shortest secret accepted: RFC 7518 §3.2 asks for a key at least as long
/// as the hash output (256 bits).
pub const MIN_SECRET_LEN: usize = 32;

/// Longest token looked at (a JWT for a chat login is a few hundred bytes).
const MAX_TOKEN_LEN: usize = 4096;

type HmacSha256 = Hmac<Sha256>;

/// Why a login token was refused. `Display` is the HTTP 401 body and the
/// log reason; it never contains the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No `?token=` and no `Authorization: Bearer` header.
    Missing,
    /// Not a well-formed JWT; says which part is wrong.
    Malformed(&'static str),
    /// `alg` is not HS256 (e.g. `none`, HS384, RS256).
    Algorithm(String),
    /// The signature does not match (wrong secret or altered token).
    BadSignature,
    /// `exp` has passed.
    Expired,
    /// `nbf` is still in the future.
    NotYetValid,
    /// `aud` does not name this server's audience.
    WrongAudience,
    /// `sub` is not a valid user name.
    BadSubject(&'static str),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Missing => write!(
                f,
                "missing login token: this server requires a signed token, as ?token=JWT or \
                 an Authorization: Bearer JWT header"
            ),
            Refusal::Malformed(why) => write!(f, "malformed login token: {why}"),
            Refusal::Algorithm(alg) => write!(
                f,
                "login token refused: algorithm {alg:?} is not accepted (only HS256)"
            ),
            Refusal::BadSignature => write!(f, "login token refused: bad signature"),
            Refusal::Expired => write!(f, "login token refused: expired"),
            Refusal::NotYetValid => write!(f, "login token refused: not yet valid (nbf)"),
            Refusal::WrongAudience => write!(f, "login token refused: wrong audience (aud)"),
            Refusal::BadSubject(why) => write!(f, "login token refused: invalid sub: {why}"),
        }
    }
}

/// The server's token checker.
#[derive(Clone)]
pub struct Auth {
    key: Vec<u8>,
    audience: Option<String>,
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the key.
        f.debug_struct("Auth")
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The secret from a file's contents: surrounding whitespace (the final
/// newline an editor adds) is not part of it.
pub fn secret_from(text: &[u8]) -> Result<Vec<u8>, String> {
    let start = text.iter().position(|b| !b.is_ascii_whitespace());
    let end = text.iter().rposition(|b| !b.is_ascii_whitespace());
    let secret = match (start, end) {
        (Some(s), Some(e)) => text[s..=e].to_vec(),
        _ => Vec::new(),
    };
    if secret.len() < MIN_SECRET_LEN {
        return Err(format!(
            "the auth secret is {} bytes; at least {MIN_SECRET_LEN} are needed for HS256 \
             (e.g. `head -c 32 /dev/urandom | base64 > secret`)",
            secret.len()
        ));
    }
    Ok(secret)
}

/// Environment variable that may hold the secret instead of a file.
pub const SECRET_ENV: &str = "CHATSERV_AUTH_SECRET";

/// The secret from `file`, else from [`SECRET_ENV`]; `None` if neither is
/// given (logins are then not signed).
pub fn load_secret(file: Option<&std::path::Path>) -> Result<Option<Vec<u8>>, String> {
    if let Some(file) = file {
        let text = std::fs::read(file)
            .map_err(|e| format!("cannot read the auth secret file {}: {e}", file.display()))?;
        return secret_from(&text)
            .map(Some)
            .map_err(|e| format!("{}: {e}", file.display()));
    }
    match std::env::var_os(SECRET_ENV) {
        Some(v) if !v.is_empty() => {
            use std::os::unix::ffi::OsStrExt;
            secret_from(v.as_bytes())
                .map(Some)
                .map_err(|e| format!("{SECRET_ENV}: {e}"))
        }
        _ => Ok(None),
    }
}

impl Auth {
    /// A checker with `key`; tokens must name `audience` if it is set.
    pub fn new(key: Vec<u8>, audience: Option<String>) -> Auth {
        Auth { key, audience }
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC takes keys of any length.
        HmacSha256::new_from_slice(&self.key).expect("HMAC accepts any key length")
    }

    /// Check `token` at time `now` (Unix seconds); the user name on success.
    pub fn verify(&self, token: &str, now: u64) -> Result<String, Refusal> {
        let token = token.trim();
        if token.is_empty() {
            return Err(Refusal::Missing);
        }
        if token.len() > MAX_TOKEN_LEN {
            return Err(Refusal::Malformed("too long"));
        }
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Refusal::Malformed(
                "expected three base64url parts separated by dots",
            ));
        };
        let header = decode_json(header, "the header is not base64url-encoded JSON")?;
        match header.get("alg").and_then(Value::as_str) {
            Some("HS256") => {}
            Some(other) => return Err(Refusal::Algorithm(other.chars().take(16).collect())),
            None => return Err(Refusal::Malformed("the header has no alg")),
        }
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| Refusal::Malformed("the signature is not base64url"))?;
        let signed_len = token.len() - signature_len(token);
        let mut mac = self.mac();
        mac.update(&token.as_bytes()[..signed_len]);
        mac.verify_slice(&signature)
            .map_err(|_| Refusal::BadSignature)?;

        let claims = decode_json(payload, "the claims are not base64url-encoded JSON")?;
        let exp = match claims.get("exp") {
            Some(v) => numeric_date(v).ok_or(Refusal::Malformed("exp is not a number"))?,
            None => return Err(Refusal::Malformed("no exp claim (an expiry is required)")),
        };
        if now > exp.saturating_add(LEEWAY) {
            return Err(Refusal::Expired);
        }
        if let Some(nbf) = claims.get("nbf") {
            let nbf = numeric_date(nbf).ok_or(Refusal::Malformed("nbf is not a number"))?;
            if now.saturating_add(LEEWAY) < nbf {
                return Err(Refusal::NotYetValid);
            }
        }
        if let Some(want) = &self.audience {
            let ok = match claims.get("aud") {
                Some(Value::String(aud)) => aud == want,
                Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(want)),
                _ => false,
            };
            if !ok {
                return Err(Refusal::WrongAudience);
            }
        }
        let sub = claims
            .get("sub")
            .and_then(Value::as_str)
            .ok_or(Refusal::Malformed("no sub claim (the user name)"))?;
        chatcommon::check_user_name(sub).map_err(Refusal::BadSubject)?;
        Ok(sub.to_owned())
    }

    /// A token for `user`, valid from `now` for `ttl_secs`, with `aud` if
    /// given.
    pub fn sign(&self, user: &str, now: u64, ttl_secs: u64, aud: Option<&str>) -> String {
        let header = serde_json::json!({ "alg": "HS256", "typ": "JWT" });
        let mut claims = serde_json::json!({
            "sub": user,
            "iat": now,
            "nbf": now,
            "exp": now.saturating_add(ttl_secs),
        });
        if let Some(aud) = aud {
            claims["aud"] = Value::from(aud);
        }
        let signed = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut mac = self.mac();
        mac.update(signed.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{signed}.{signature}")
    }
}

/// Length of the `.signature` suffix.
fn signature_len(token: &str) -> usize {
    token.rfind('.').map_or(0, |dot| token.len() - dot)
}

fn decode_json(part: &str, why: &'static str) -> Result<Value, Refusal> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| Refusal::Malformed(why))?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(v @ Value::Object(_)) => Ok(v),
        _ => Err(Refusal::Malformed(why)),
    }
}

/// A NumericDate (RFC 7519 §2): seconds, possibly fractional; negative
/// values count as 0.
fn numeric_date(v: &Value) -> Option<u64> {
    if let Some(n) = v.as_u64() {
        return Some(n);
    }
    let f = v.as_f64()?;
    f.is_finite().then(|| f.max(0.0) as u64)
}

/// The token a request carries: `Authorization: Bearer …` first, else
/// `?token=…`.
pub fn token_of(request: &wsproto::Request) -> Option<String> {
    if let Some(value) = request.header("authorization") {
        let value = value.trim();
        if let Some((scheme, token)) = value.split_once(' ') {
            if scheme.eq_ignore_ascii_case("bearer") {
                return Some(token.trim().to_owned());
            }
        }
    }
    request.query_param("token")
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

    fn auth() -> Auth {
        Auth::new(b"0123456789abcdef0123456789abcdef".to_vec(), None)
    }

    fn forge(header: &str, claims: &str, key: &[u8]) -> String {
        let signed = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(claims)
        );
        let mut mac = HmacSha256::new_from_slice(key).unwrap();
        mac.update(signed.as_bytes());
        format!(
            "{signed}.{}",
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        )
    }

    #[test]
    fn round_trip() {
        let a = auth();
        let t = a.sign("张三", NOW, 3600, None);
        assert_eq!(a.verify(&t, NOW).as_deref(), Ok("张三"));
        assert_eq!(a.verify(&t, NOW + 3600 + LEEWAY).as_deref(), Ok("张三"));
        assert_eq!(a.verify(&t, NOW + 3601 + LEEWAY), Err(Refusal::Expired));
        assert_eq!(a.verify(&t, NOW - LEEWAY - 1), Err(Refusal::NotYetValid));
    }

    #[test]
    fn refusals() {
        let a = auth();
        let key = &a.key.clone();
        let hs = r#"{"alg":"HS256","typ":"JWT"}"#;
        assert_eq!(a.verify("", NOW), Err(Refusal::Missing));
        assert!(matches!(a.verify("abc", NOW), Err(Refusal::Malformed(_))));
        assert!(matches!(
            a.verify("a.b.c.d", NOW),
            Err(Refusal::Malformed(_))
        ));
        let other = Auth::new(b"another secret of thirty-two byt".to_vec(), None);
        let t = other.sign("ann", NOW, 60, None);
        assert_eq!(a.verify(&t, NOW), Err(Refusal::BadSignature));
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode(r#"{"sub":"ann","exp":1900000000}"#)
        );
        assert_eq!(a.verify(&none, NOW), Err(Refusal::Algorithm("none".into())));
        let hs384 = forge(r#"{"alg":"HS384"}"#, r#"{"sub":"a","exp":1900000000}"#, key);
        assert_eq!(
            a.verify(&hs384, NOW),
            Err(Refusal::Algorithm("HS384".into()))
        );
        let no_exp = forge(hs, r#"{"sub":"ann"}"#, key);
        assert!(matches!(a.verify(&no_exp, NOW), Err(Refusal::Malformed(_))));
        let bad_sub = forge(hs, r#"{"sub":"x -- FROM y","exp":1900000000}"#, key);
        assert!(matches!(
            a.verify(&bad_sub, NOW),
            Err(Refusal::BadSubject(_))
        ));
        let aud = Auth::new(key.clone(), Some("chat".into()));
        assert_eq!(
            aud.verify(&a.sign("a", NOW, 60, None), NOW),
            Err(Refusal::WrongAudience)
        );
        assert_eq!(
            aud.verify(&a.sign("a", NOW, 60, Some("other")), NOW),
            Err(Refusal::WrongAudience)
        );
        assert_eq!(
            aud.verify(&a.sign("a", NOW, 60, Some("chat")), NOW)
                .as_deref(),
            Ok("a")
        );
        let list = forge(
            hs,
            r#"{"sub":"a","exp":1900000000,"aud":["x","chat"]}"#,
            key,
        );
        assert_eq!(aud.verify(&list, NOW).as_deref(), Ok("a"));
        // A flipped signature byte.
        let mut t = a.sign("ann", NOW, 60, None).into_bytes();
        let last = t.len() - 2;
        t[last] = if t[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            a.verify(std::str::from_utf8(&t).unwrap(), NOW),
            Err(Refusal::BadSignature)
        );
    }

    #[test]
    fn refusal_text_never_contains_the_token() {
        let a = auth();
        let t = a.sign("ann", NOW, 60, None);
        for r in [
            a.verify(&t, NOW + 10_000).unwrap_err(),
            a.verify(&t[1..], NOW).unwrap_err(),
        ] {
            assert!(!r.to_string().contains(&t[..20]), "{r}");
        }
    }

    #[test]
    fn secrets() {
        assert!(secret_from(b"short\n").is_err());
        assert_eq!(
            secret_from(b"  0123456789abcdef0123456789abcdef\n")
                .unwrap()
                .len(),
            32
        );
    }
}
