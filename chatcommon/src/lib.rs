//! What `chatserv` and `chatcli` must agree on, written once: the
//! duration and size syntax of their command lines, and the user-name
//! rules (the web page repeats the same rules in JavaScript; a test keeps
//! them in step).

use std::time::Duration;

/// Longest user name, in Unicode scalar values (Rust `char`s; JavaScript
/// `[...name].length`), counted the same way by server, page and chatcli.
pub const MAX_USER_CHARS: usize = 64;

/// The separator the server puts between a message and its sender's name.
/// A name containing it could make a line look like it came from someone
/// else, so names must not contain it.
pub const FROM_SEPARATOR: &str = " -- FROM ";

/// Check a user name against the rules; the error names the rule broken.
///
/// 1 to [`MAX_USER_CHARS`] scalar values, no control characters, no
/// leading or trailing whitespace, and not containing [`FROM_SEPARATOR`].
pub fn check_user_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("the user name is empty");
    }
    if name.chars().count() > MAX_USER_CHARS {
        return Err("the user name is too long (at most 64 characters)");
    }
    if name.chars().any(char::is_control) {
        return Err("the user name must not contain control characters");
    }
    if name.starts_with(char::is_whitespace) || name.ends_with(char::is_whitespace) {
        return Err("the user name must not start or end with whitespace");
    }
    if name.contains(FROM_SEPARATOR) {
        return Err("the user name must not contain \" -- FROM \"");
    }
    Ok(())
}

/// Parse a duration: one or more `<integer><unit>` groups, units `ms`, `s`,
/// `m` (or `min`), `h`: `30s`, `500ms`, `2m`, `1h`, `1m30s`. A unit is
/// required (is `90` seconds or milliseconds?). Zero is accepted here;
/// options for which zero makes no sense use [`parse_positive_duration`].
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad =
        |why: &str| format!("invalid duration {text:?}: {why} (examples: 30s, 500ms, 2m, 1m30s)");
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad("empty"));
    }
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(bad("expected a number"));
        }
        let n: u64 = rest[..digits]
            .parse()
            .map_err(|_| bad("number too large"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let part = match &rest[..unit_len] {
            "ms" => Some(Duration::from_millis(n)),
            "s" => Some(Duration::from_secs(n)),
            "m" | "min" => n.checked_mul(60).map(Duration::from_secs),
            "h" => n.checked_mul(3600).map(Duration::from_secs),
            "" => return Err(bad("missing unit")),
            _ => return Err(bad("unknown unit, use ms, s, m or h")),
        };
        total = part
            .and_then(|p| total.checked_add(p))
            .ok_or_else(|| bad("too long"))?;
        rest = &rest[unit_len..];
    }
    Ok(total)
}

/// [`parse_duration`], refusing zero: for time-outs and intervals, where
/// zero would mean "never" to the socket API or a busy loop.
pub fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    match parse_duration(text)? {
        Duration::ZERO => Err(format!(
            "invalid duration {text:?}: must be greater than zero"
        )),
        d => Ok(d),
    }
}

/// Parse a size in bytes: an integer with an optional unit `B`, `KiB`,
/// `MiB` or `GiB` (powers of 1024; `K`/`KB`, `M`/`MB`, `G`/`GB` are taken
/// as the same binary units): `65536`, `64KiB`, `1MiB`.
pub fn parse_size(text: &str) -> Result<usize, String> {
    let bad = |why: &str| format!("invalid size {text:?}: {why} (examples: 65536, 64KiB, 1MiB)");
    let t = text.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    if digits == 0 {
        return Err(bad("expected a number"));
    }
    let n: u64 = t[..digits].parse().map_err(|_| bad("number too large"))?;
    let unit = t[digits..].trim_start();
    let scale: u64 = match unit {
        "" | "B" => 1,
        "KiB" | "K" | "KB" | "k" | "kB" => 1 << 10,
        "MiB" | "M" | "MB" => 1 << 20,
        "GiB" | "G" | "GB" => 1 << 30,
        _ => return Err(bad("unknown unit, use B, KiB, MiB or GiB")),
    };
    n.checked_mul(scale)
        .and_then(|v| usize::try_from(v).ok())
        .ok_or_else(|| bad("too large"))
}

/// Write `text` so that it cannot steer a terminal: control characters
/// (C0, DEL, C1: newlines, escape sequences, bells) are shown as visible
/// escapes (`\n`, `\r`, `\t`, `\\`... `\x1b`, `\u{9b}`), so one message is
/// one line and nothing in it is interpreted by the terminal. Also escapes
/// the bidirectional-override characters, which can make text display in
/// another order than it was sent.
pub fn escape_for_terminal(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control()
                || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') =>
            {
                out.push_str(&format!("\\u{{{:x}}}", c as u32))
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("2min"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        for bad in [
            "",
            "7",
            "s",
            "10x",
            "ms10",
            "-1s",
            "1.5s",
            "6 s",
            "99999999999999999999s",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(parse_duration(&format!("{}h", u64::MAX / 60)).is_err());
        assert!(parse_positive_duration("0ms").is_err());
        assert_eq!(parse_positive_duration("1ms"), Ok(Duration::from_millis(1)));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("65536"), Ok(65536));
        assert_eq!(parse_size("64KiB"), Ok(65536));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("2 MiB"), Ok(2 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        for bad in ["", "KiB", "1.5MiB", "-1", "10XB", "99999999999999999999"] {
            assert!(parse_size(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn user_names() {
        for good in [
            "ann",
            "张三",
            "a b",
            &"é".repeat(64),
            "x--FROM y",
            "a -- FROMb",
        ] {
            assert_eq!(check_user_name(good), Ok(()), "{good:?}");
        }
        for (bad, rule) in [
            ("", "empty"),
            (&*"é".repeat(65), "too long"),
            ("a\nb", "control"),
            ("a\u{1b}[31m", "control"),
            ("\u{85}x", "control"),
            (" ann", "whitespace"),
            ("ann ", "whitespace"),
            ("\u{3000}ann", "whitespace"),
            ("x -- FROM admin", "FROM"),
        ] {
            let err = check_user_name(bad).unwrap_err();
            assert!(err.contains(rule), "{bad:?}: {err}");
        }
    }

    #[test]
    fn terminal_escapes() {
        assert_eq!(
            escape_for_terminal("我是管理员 -- FROM admin\nok"),
            "我是管理员 -- FROM admin\\nok"
        );
        assert_eq!(
            escape_for_terminal("\u{1b}[31mred\u{1b}]0;title\u{7}"),
            "\\x1b[31mred\\x1b]0;title\\x07"
        );
        assert_eq!(escape_for_terminal("a\\nb"), "a\\\\nb");
        assert_eq!(escape_for_terminal("\u{9b}\u{202e}"), "\\u{9b}\\u{202e}");
        assert_eq!(escape_for_terminal("héllo 👋"), "héllo 👋");
    }
}
