//! permessage-deflate negotiation (RFC 7692 §5, §7.1): parse
//! `Sec-WebSocket-Extensions`, choose or check parameters.

use crate::error::{Error, Result};

/// permessage-deflate settings: what a server accepts, what a client offers.
///
/// Window sizes are base-2 logarithms, 9 to 15 (RFC 7692 allows 8, but zlib
/// cannot produce a raw deflate stream with a 256-byte window, so an offer
/// that would force us to compress with 8 is declined).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeflateConfig {
    /// The server resets its compressor after every message
    /// (server: always announce it; client: ask for it).
    pub server_no_context_takeover: bool,
    /// The client resets its compressor after every message
    /// (server: require it; client: promise it in the offer).
    pub client_no_context_takeover: bool,
    /// Largest window the server compresses with (server: own limit;
    /// client: asked of the server when below 15).
    pub server_max_window_bits: u8,
    /// Largest window the client compresses with (server: asked of the
    /// client when it allows; client: own limit, offered when below 15).
    pub client_max_window_bits: u8,
    /// zlib compression level, 0 (store) to 9 (best); default 6.
    pub compression_level: u32,
    /// Messages shorter than this many bytes are sent uncompressed
    /// (RFC 7692 §6: compression is per message and optional); default 32.
    pub min_compress_size: usize,
}

impl Default for DeflateConfig {
    fn default() -> DeflateConfig {
        DeflateConfig {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
            compression_level: 6,
            min_compress_size: 32,
        }
    }
}

/// The parameters both sides agreed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeflateParams {
    /// The server resets its compression context after each message.
    pub server_no_context_takeover: bool,
    /// The client resets its compression context after each message.
    pub client_no_context_takeover: bool,
    /// The server's compression window (log2).
    pub server_max_window_bits: u8,
    /// The client's compression window (log2).
    pub client_max_window_bits: u8,
}

const NAME: &str = "permessage-deflate";

/// One extension from a `Sec-WebSocket-Extensions` list: name and parameters.
type Extension<'a> = (&'a str, Vec<(&'a str, Option<&'a str>)>);

/// Split a `Sec-WebSocket-Extensions` value into extensions and their
/// parameters (RFC 6455 §9.1 grammar; quoted values are unquoted).
fn parse_extensions(value: &str) -> Vec<Extension<'_>> {
    split_outside_quotes(value, ',')
        .filter(|e| !e.trim().is_empty())
        .map(|ext| {
            let mut parts = split_outside_quotes(ext, ';').map(str::trim);
            let name = parts.next().unwrap_or("");
            let params = parts
                .filter(|p| !p.is_empty())
                .map(|p| match p.split_once('=') {
                    Some((k, v)) => (k.trim(), Some(unquote(v.trim()))),
                    None => (p, None),
                })
                .collect();
            (name, params)
        })
        .collect()
}

fn split_outside_quotes(s: &str, sep: char) -> impl Iterator<Item = &str> {
    let mut in_quotes = false;
    s.split(move |c: char| {
        if c == '"' {
            in_quotes = !in_quotes;
        }
        c == sep && !in_quotes
    })
}

fn unquote(v: &str) -> &str {
    v.strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(v)
}

/// A window-bits value: 1*DIGIT in 8..=15 without leading zeros (RFC 7692 §7.1.2).
fn window_bits(v: &str) -> Option<u8> {
    if v.starts_with('0') || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok().filter(|b| (8..=15).contains(b))
}

/// The parameters of one permessage-deflate offer or response, checked for
/// unknown names, duplicates and bad values.
#[derive(Debug, Default)]
struct Params {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    /// `Some(None)`: present without a value.
    client_max_window_bits: Option<Option<u8>>,
}

impl Params {
    fn parse(raw: &[(&str, Option<&str>)]) -> Option<Params> {
        let mut p = Params::default();
        let mut seen = Vec::with_capacity(raw.len());
        for &(name, value) in raw {
            let name = name.to_ascii_lowercase();
            if seen.contains(&name) {
                return None;
            }
            match (name.as_str(), value) {
                ("server_no_context_takeover", None) => p.server_no_context_takeover = true,
                ("client_no_context_takeover", None) => p.client_no_context_takeover = true,
                ("server_max_window_bits", Some(v)) => {
                    p.server_max_window_bits = Some(window_bits(v)?)
                }
                ("client_max_window_bits", None) => p.client_max_window_bits = Some(None),
                ("client_max_window_bits", Some(v)) => {
                    p.client_max_window_bits = Some(Some(window_bits(v)?))
                }
                _ => return None,
            }
            seen.push(name);
        }
        Some(p)
    }
}

/// Server side (RFC 7692 §7.1): pick the first acceptable permessage-deflate
/// offer among `header_values`; return the agreed parameters and the
/// response header value. Offers with unknown or duplicate parameters, or
/// that we cannot honour, are declined.
pub(crate) fn negotiate_server(
    config: &DeflateConfig,
    header_values: &[&str],
) -> Option<(DeflateParams, String)> {
    header_values
        .iter()
        .flat_map(|v| parse_extensions(v))
        .filter(|(name, _)| name.eq_ignore_ascii_case(NAME))
        .find_map(|(_, raw)| accept_offer(config, &Params::parse(&raw)?))
}

fn accept_offer(config: &DeflateConfig, offer: &Params) -> Option<(DeflateParams, String)> {
    let mut response = String::from(NAME);
    let server_nct = offer.server_no_context_takeover || config.server_no_context_takeover;
    if server_nct {
        response.push_str("; server_no_context_takeover");
    }
    let client_nct = config.client_no_context_takeover;
    if client_nct {
        response.push_str("; client_no_context_takeover");
    }
    let own = config.server_max_window_bits.clamp(9, 15);
    let server_bits = offer
        .server_max_window_bits
        .map_or(own, |asked| asked.min(own));
    if server_bits < 9 {
        return None; // zlib cannot compress with a 256-byte window
    }
    if offer.server_max_window_bits.is_some() || server_bits < 15 {
        response.push_str(&format!("; server_max_window_bits={server_bits}"));
    }
    let mut client_bits = 15;
    if let Some(offered) = offer.client_max_window_bits {
        client_bits = offered
            .unwrap_or(15)
            .min(config.client_max_window_bits.clamp(8, 15));
        if client_bits < 15 {
            response.push_str(&format!("; client_max_window_bits={client_bits}"));
        }
    }
    Some((
        DeflateParams {
            server_no_context_takeover: server_nct,
            client_no_context_takeover: client_nct,
            server_max_window_bits: server_bits,
            client_max_window_bits: client_bits,
        },
        response,
    ))
}

/// Client side: the offer to send for `config`.
pub(crate) fn client_offer(config: &DeflateConfig) -> String {
    let mut offer = String::from(NAME);
    if config.server_no_context_takeover {
        offer.push_str("; server_no_context_takeover");
    }
    if config.client_no_context_takeover {
        offer.push_str("; client_no_context_takeover");
    }
    if config.server_max_window_bits < 15 {
        offer.push_str(&format!(
            "; server_max_window_bits={}",
            config.server_max_window_bits.clamp(8, 15)
        ));
    }
    match config.client_max_window_bits.clamp(9, 15) {
        15 => offer.push_str("; client_max_window_bits"),
        bits => offer.push_str(&format!("; client_max_window_bits={bits}")),
    }
    offer
}

/// Client side: check the server's `Sec-WebSocket-Extensions` answer to our
/// offer (RFC 7692 §7.1). `None` means no extension was selected.
pub(crate) fn check_client_response(
    config: &DeflateConfig,
    header_values: &[&str],
) -> Result<Option<DeflateParams>> {
    let extensions: Vec<_> = header_values
        .iter()
        .flat_map(|v| parse_extensions(v))
        .collect();
    let (name, raw) = match extensions.as_slice() {
        [] => return Ok(None),
        [one] => one,
        _ => return Err(Error::UnexpectedExtension(header_values.join(", "))),
    };
    let invalid = || Error::InvalidHeader {
        name: "Sec-WebSocket-Extensions",
        value: header_values.join(", "),
    };
    if !name.eq_ignore_ascii_case(NAME) {
        return Err(Error::UnexpectedExtension(header_values.join(", ")));
    }
    let p = Params::parse(raw).ok_or_else(invalid)?;
    let server_bits = p.server_max_window_bits.unwrap_or(15);
    if config.server_max_window_bits < 15 && server_bits > config.server_max_window_bits {
        return Err(invalid());
    }
    if config.server_no_context_takeover && !p.server_no_context_takeover {
        return Err(invalid());
    }
    let own = config.client_max_window_bits.clamp(9, 15);
    let client_bits = match p.client_max_window_bits {
        None => own,
        Some(None) => return Err(invalid()), // a response must give a value
        Some(Some(bits)) if bits < 9 => return Err(invalid()), // zlib cannot honour 8
        Some(Some(bits)) => bits.min(own),
    };
    Ok(Some(DeflateParams {
        server_no_context_takeover: p.server_no_context_takeover,
        client_no_context_takeover: p.client_no_context_takeover
            || config.client_no_context_takeover,
        server_max_window_bits: server_bits,
        client_max_window_bits: client_bits,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(offer: &str) -> Option<(DeflateParams, String)> {
        negotiate_server(&DeflateConfig::default(), &[offer])
    }

    #[test]
    fn server_negotiation_table() {
        let cases: &[(&str, Option<&str>)] = &[
            ("permessage-deflate", Some("permessage-deflate")),
            ("permessage-deflate; client_max_window_bits", Some("permessage-deflate")),
            (
                "permessage-deflate; client_max_window_bits=10",
                Some("permessage-deflate; client_max_window_bits=10"),
            ),
            (
                "permessage-deflate; server_max_window_bits=9",
                Some("permessage-deflate; server_max_window_bits=9"),
            ),
            (
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
                Some("permessage-deflate; server_no_context_takeover"),
            ),
            ("permessage-deflate; server_max_window_bits=8", None),
            ("permessage-deflate; server_max_window_bits", None),
            ("permessage-deflate; server_max_window_bits=16", None),
            ("permessage-deflate; server_max_window_bits=010", None),
            ("permessage-deflate; client_max_window_bits=7", None),
            ("permessage-deflate; foo", None),
            ("permessage-deflate; server_no_context_takeover=1", None),
            ("permessage-deflate; server_no_context_takeover; server_no_context_takeover", None),
            ("x-webkit-deflate-frame", None),
            // several offers: the first acceptable one wins
            (
                "permessage-deflate; server_max_window_bits=8, permessage-deflate; client_max_window_bits",
                Some("permessage-deflate"),
            ),
            (
                "permessage-deflate; bogus, permessage-deflate; server_no_context_takeover",
                Some("permessage-deflate; server_no_context_takeover"),
            ),
            (
                "permessage-deflate; server_max_window_bits=\"10\"",
                Some("permessage-deflate; server_max_window_bits=10"),
            ),
        ];
        for (offer, expected) in cases {
            let got = server(offer).map(|(_, r)| r);
            assert_eq!(got.as_deref(), *expected, "offer {offer:?}");
        }
    }

    #[test]
    fn server_config_chooses_what_to_require() {
        let config = DeflateConfig {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            server_max_window_bits: 12,
            client_max_window_bits: 11,
            ..DeflateConfig::default()
        };
        let (params, response) =
            negotiate_server(&config, &["permessage-deflate; client_max_window_bits"]).unwrap();
        assert_eq!(
            response,
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
             server_max_window_bits=12; client_max_window_bits=11"
        );
        assert_eq!(
            params,
            DeflateParams {
                server_no_context_takeover: true,
                client_no_context_takeover: true,
                server_max_window_bits: 12,
                client_max_window_bits: 11,
            }
        );
        // Without client_max_window_bits in the offer, the client cannot be limited.
        let (params, response) = negotiate_server(&config, &["permessage-deflate"]).unwrap();
        assert_eq!(params.client_max_window_bits, 15);
        assert!(!response.contains("client_max_window_bits"));
    }

    #[test]
    fn client_offer_and_response_checks() {
        let config = DeflateConfig::default();
        assert_eq!(
            client_offer(&config),
            "permessage-deflate; client_max_window_bits"
        );
        let ok = |r: &str| check_client_response(&config, &[r]);
        assert_eq!(
            ok("permessage-deflate")
                .unwrap()
                .unwrap()
                .client_max_window_bits,
            15
        );
        let p = ok("permessage-deflate; client_max_window_bits=9; server_no_context_takeover")
            .unwrap()
            .unwrap();
        assert_eq!(
            (p.client_max_window_bits, p.server_no_context_takeover),
            (9, true)
        );
        assert!(check_client_response(&config, &[]).unwrap().is_none());
        for bad in [
            "permessage-deflate; foo",
            "permessage-deflate; client_max_window_bits",
            "permessage-deflate; client_max_window_bits=8",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate, permessage-deflate",
            "x-other",
        ] {
            assert!(ok(bad).is_err(), "{bad}");
        }
        let strict = DeflateConfig {
            server_max_window_bits: 10,
            server_no_context_takeover: true,
            ..DeflateConfig::default()
        };
        assert_eq!(
            client_offer(&strict),
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=10; client_max_window_bits"
        );
        assert!(check_client_response(
            &strict,
            &["permessage-deflate; server_no_context_takeover; server_max_window_bits=9"]
        )
        .is_ok());
        // asked for 10 and no context takeover: omitting either is an error
        assert!(check_client_response(
            &strict,
            &["permessage-deflate; server_no_context_takeover"]
        )
        .is_err());
        assert!(
            check_client_response(&strict, &["permessage-deflate; server_max_window_bits=10"])
                .is_err()
        );
        assert!(check_client_response(
            &strict,
            &["permessage-deflate; server_no_context_takeover; server_max_window_bits=12"]
        )
        .is_err());
    }
}
