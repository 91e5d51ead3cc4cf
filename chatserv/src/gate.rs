//! Who may open a WebSocket: the checks made on the upgrade request before
//! anything is upgraded. Each refusal is an HTTP answer with a body saying
//! why (a browser script never sees the body, but curl, chatcli and the
//! log do).
//!
//! - **Origin** (Cross-Site WebSocket Hijacking): a browser always sends
//!   `Origin`; a request whose `Origin` is neither this server's own origin
//!   (scheme + `Host`) nor allowed by `--allowed-origin` gets 403. Requests
//!   without `Origin` come from non-browser clients and are allowed: the
//!   attack needs a victim's browser.
//! - **Login**: with a secret, a valid HS256 token (401 otherwise);
//!   without, `?user=NAME` (400 for a name breaking the rules).

use std::fmt;

use wsproto::{Request, Response};

use crate::auth::{self, Auth};

/// One `--allowed-origin`: `scheme://host[:port]`, where the host may start
/// with `*.` to allow any subdomain (never the bare domain, never a
/// substring match).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginPattern {
    scheme: String,
    /// Without the `*.`, lowercase.
    host: String,
    wildcard: bool,
    port: Option<u16>,
}

impl fmt::Display for OriginPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let star = if self.wildcard { "*." } else { "" };
        write!(f, "{}://{star}{}", self.scheme, self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        Ok(())
    }
}

/// An origin split into its parts, lowercase; `None` if it is not
/// `scheme://host[:port]` (e.g. `null`, or with a path).
fn split_origin(origin: &str) -> Option<(String, String, Option<u16>)> {
    let origin = origin.trim().to_ascii_lowercase();
    let (scheme, rest) = origin.split_once("://")?;
    if scheme.is_empty()
        || !scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
    {
        return None;
    }
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (inside, after) = v6.split_once(']')?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?.parse().ok()?),
        };
        (format!("[{inside}]"), port)
    } else {
        match rest.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p.parse().ok()?)),
            None => (rest.to_owned(), None),
        }
    };
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.*[]:_".contains(&b));
    host_ok.then(|| (scheme.to_owned(), host, port))
}

/// The default port of a scheme, so that `http://h` and `http://h:80` are
/// the same origin.
fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        _ => None,
    }
}

impl OriginPattern {
    /// Parse a `--allowed-origin` value.
    pub fn parse(text: &str) -> Result<OriginPattern, String> {
        let bad = |why: &str| {
            format!(
                "invalid origin {text:?}: {why} (expected scheme://host[:port], e.g. \
                 https://chat.example.com or https://*.example.com)"
            )
        };
        let (scheme, host, port) = split_origin(text).ok_or_else(|| bad("not an origin"))?;
        let (wildcard, host) = match host.strip_prefix("*.") {
            Some(rest) => (true, rest.to_owned()),
            None => (false, host),
        };
        if host.contains('*') {
            return Err(bad(
                "`*` is only allowed as the first label (`*.example.com`)",
            ));
        }
        if wildcard && !host.contains('.') {
            return Err(bad("a wildcard needs at least two labels after `*.`"));
        }
        Ok(OriginPattern {
            port: port.or_else(|| default_port(&scheme)),
            scheme,
            host,
            wildcard,
        })
    }

    fn matches(&self, scheme: &str, host: &str, port: Option<u16>) -> bool {
        if scheme != self.scheme || port.or_else(|| default_port(scheme)) != self.port {
            return false;
        }
        if self.wildcard {
            // `a.example.com` and `a.b.example.com`, never `example.com`
            // itself nor `evilexample.com`.
            host.strip_suffix(&self.host)
                .and_then(|prefix| prefix.strip_suffix('.'))
                .is_some_and(|label| !label.is_empty() && !label.contains(['[', ']', ':']))
        } else {
            host == self.host
        }
    }
}

/// Whether a request with `origin` may open a WebSocket on a server whose
/// own origin is `own_scheme://host_header`. `own_scheme` is `http` for
/// plain TCP and `https` behind TLS.
pub fn origin_allowed(
    origin: &str,
    own_scheme: &str,
    host_header: Option<&str>,
    allowed: &[OriginPattern],
) -> bool {
    let Some((scheme, host, port)) = split_origin(origin) else {
        // `null` (sandboxed frames, file: pages) or garbage.
        return false;
    };
    if let Some(own) = host_header.and_then(|h| split_origin(&format!("{own_scheme}://{h}"))) {
        let (own_scheme, own_host, own_port) = own;
        if scheme == own_scheme
            && host == own_host
            && port.or_else(|| default_port(&scheme))
                == own_port.or_else(|| default_port(&own_scheme))
        {
            return true;
        }
    }
    allowed.iter().any(|p| p.matches(&scheme, &host, port))
}

/// Check the `Origin` of an upgrade request; `Err` is the 403 to send.
pub fn check_origin(
    request: &Request,
    own_scheme: &str,
    allowed: &[OriginPattern],
) -> Result<(), (Response, String)> {
    let Some(origin) = request.header("origin") else {
        return Ok(());
    };
    if origin_allowed(origin, own_scheme, request.header("host"), allowed) {
        return Ok(());
    }
    let shown: String = origin.chars().take(100).collect();
    Err((
        Response::text(
            403,
            "origin not allowed: this chat only accepts WebSocket connections from its own \
             page or an origin given with --allowed-origin",
        ),
        format!("origin not allowed: {shown:?}"),
    ))
}

/// The user name of an upgrade request: from its token when `auth` is
/// set, else from `?user=`. `Err` is the refusal to send and the reason
/// to log (never the token).
pub fn login(request: &Request, auth: Option<&Auth>) -> Result<String, (Response, String)> {
    if let Some(auth) = auth {
        let token = auth::token_of(request).unwrap_or_default();
        return auth.verify(&token, auth::now()).map_err(|refusal| {
            let why = refusal.to_string();
            let response = Response::text(401, &why).with_header("WWW-Authenticate", "Bearer");
            (response, why)
        });
    }
    let user = request.query_param("user").unwrap_or_default();
    if user.is_empty() {
        let why = "missing user name: connect to ws://HOST:PORT/?user=NAME";
        return Err((Response::text(400, why), why.to_owned()));
    }
    match chatcommon::check_user_name(&user) {
        Ok(()) => Ok(user),
        Err(rule) => Err((Response::text(400, rule), rule.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(origin: &str, host: &str, patterns: &[&str]) -> bool {
        let patterns: Vec<_> = patterns
            .iter()
            .map(|p| OriginPattern::parse(p).unwrap())
            .collect();
        origin_allowed(origin, "http", Some(host), &patterns)
    }

    fn user(target: &str) -> Result<String, String> {
        let head = format!("GET {target} HTTP/1.1\r\nHost: a\r\n\r\n");
        let request = Request::parse(head.as_bytes(), 8).map_err(|_| "parse".to_owned())?;
        login(&request, None).map_err(|(r, why)| format!("{} {why}", r.status))
    }

    #[test]
    fn user_names() {
        assert_eq!(user("/?user=ann").as_deref(), Ok("ann"));
        assert_eq!(
            user("/chat?x=1&user=%E5%BC%A0%E4%B8%89").as_deref(),
            Ok("张三")
        );
        assert!(user("/").unwrap_err().contains("400 missing user name"));
        assert!(user("/?user=").is_err());
        assert!(user("/?user=+").unwrap_err().contains("whitespace"));
        assert!(user("/?user=a%0Ab").unwrap_err().contains("control"));
        assert!(user(&format!("/?user={}", "x".repeat(65)))
            .unwrap_err()
            .contains("too long"));
        assert_eq!(
            user(&format!("/?user={}", "%C3%A9".repeat(64))).map(|u| u.chars().count()),
            Ok(64)
        );
        assert!(user("/?user=%FF").is_err());
        assert!(user("/?user=a+--+FROM+b").unwrap_err().contains("FROM"));
    }

    #[test]
    fn own_origin() {
        assert!(allowed("http://127.0.0.1:8000", "127.0.0.1:8000", &[]));
        assert!(allowed("HTTP://LocalHost:8000", "localhost:8000", &[]));
        assert!(allowed(
            "http://chat.example.com",
            "chat.example.com:80",
            &[]
        ));
        assert!(allowed("http://[::1]:8000", "[::1]:8000", &[]));
        assert!(!allowed("https://127.0.0.1:8000", "127.0.0.1:8000", &[]));
        assert!(!allowed("http://127.0.0.1:8001", "127.0.0.1:8000", &[]));
        assert!(!allowed("http://evil.net", "127.0.0.1:8000", &[]));
        assert!(!allowed("null", "127.0.0.1:8000", &[]));
        assert!(!allowed("http://127.0.0.1:8000/x", "127.0.0.1:8000", &[]));
        assert!(!origin_allowed("http://a", "http", None, &[]));
    }

    #[test]
    fn patterns() {
        let p = ["https://*.example.com", "http://partner.org:8080"];
        assert!(allowed("https://chat.example.com", "h", &p));
        assert!(allowed("https://a.b.example.com", "h", &p));
        assert!(allowed("https://a.example.com:443", "h", &p));
        assert!(!allowed("https://example.com", "h", &p));
        assert!(!allowed("https://evilexample.com", "h", &p));
        assert!(!allowed("https://example.com.evil.net", "h", &p));
        assert!(!allowed("https://a.example.com.evil.net", "h", &p));
        assert!(!allowed("http://a.example.com", "h", &p));
        assert!(!allowed("https://a.example.com:8443", "h", &p));
        assert!(allowed("http://partner.org:8080", "h", &p));
        assert!(!allowed("http://partner.org", "h", &p));
        assert!(!allowed("http://xpartner.org:8080", "h", &p));
        for bad in [
            "example.com",
            "https://",
            "https://a.*.com",
            "https://*",
            "https://x/y",
            "*",
        ] {
            assert!(OriginPattern::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            OriginPattern::parse("https://*.Example.com")
                .unwrap()
                .to_string(),
            "https://*.example.com:443"
        );
    }
}
