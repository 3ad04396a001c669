//! Filters and escaping. Escaping is chosen by where a macro stands in the
//! template, so a value can never leave its place: it cannot add a query
//! parameter, end a JSON string, or start a new header line.

use super::RenderCtx;
use crate::domain::decimal::Decimal;
use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::fmt::Write;

/// A filter of a macro (`{idfa|lower|sha1}`), applied left to right.
/// `or:` and `default:` are not filters but alternatives (see `parse_macro`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    Upper,
    Lower,
    Sha1,
    Sha256,
    Md5,
    /// `revenue_share:30`: this percentage of a decimal value, exactly; a
    /// value that is not a decimal renders empty.
    RevenueShare(Decimal),
}

impl Filter {
    pub fn parse(spec: &str) -> Result<Filter, String> {
        let (name, arg) = match spec.split_once(':') {
            Some((n, a)) => (n, Some(a)),
            None => (spec, None),
        };
        match (name, arg) {
            ("upper", None) => Ok(Filter::Upper),
            ("lower", None) => Ok(Filter::Lower),
            ("sha1", None) => Ok(Filter::Sha1),
            ("sha256", None) => Ok(Filter::Sha256),
            ("md5", None) => Ok(Filter::Md5),
            ("revenue_share", Some(pct)) => match Decimal::parse(pct) {
                Some(p) if p <= Decimal::parse("100").expect("a decimal") => Ok(Filter::RevenueShare(p)),
                _ => Err(format!("revenue_share:{pct}: the percentage must be a decimal from 0 to 100")),
            },
            ("revenue_share", None) => Err("filter 'revenue_share' needs a percentage (revenue_share:30)".into()),
            ("upper" | "lower" | "sha1" | "sha256" | "md5", Some(_)) => {
                Err(format!("filter '{name}' takes no argument"))
            }
            _ => Err(format!("unknown filter '{name}'")),
        }
    }

    /// Whether the filter hides the value (a partner expects a hash).
    pub fn hashes(&self) -> bool {
        matches!(self, Filter::Sha1 | Filter::Sha256 | Filter::Md5)
    }

    pub fn apply<'a>(&self, value: Cow<'a, str>, _ctx: &RenderCtx<'a>) -> Cow<'a, str> {
        match self {
            // hashing or casing nothing stays nothing: a hash of "" would
            // look like a real identifier to the partner
            _ if value.is_empty() => value,
            Filter::Upper => Cow::Owned(value.to_uppercase()),
            Filter::Lower => Cow::Owned(value.to_lowercase()),
            Filter::Sha1 => Cow::Owned(hex_digest(Sha1::digest(value.as_bytes()).as_slice())),
            Filter::Sha256 => Cow::Owned(hex_digest(Sha256::digest(value.as_bytes()).as_slice())),
            Filter::Md5 => Cow::Owned(hex_digest(Md5::digest(value.as_bytes()).as_slice())),
            Filter::RevenueShare(pct) => {
                Cow::Owned(Decimal::parse(&value).map_or_else(String::new, |v| v.mul(pct).percent().to_string()))
            }
        }
    }
}

fn hex_digest(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// How a value is escaped where it stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    /// URL path, query or fragment, or a form body: everything but the
    /// unreserved characters of RFC 3986 is percent-encoded, so `&`, `=`,
    /// `#`, `/`, `?` and `+` are data, never structure.
    Percent,
    /// Inside a JSON string.
    Json,
    /// A header value: control characters (CR, LF, NUL, ...) are dropped.
    Header,
}

impl Escape {
    pub fn write(self, value: &str, out: &mut String) {
        match self {
            Escape::Percent => percent(value, out),
            Escape::Json => json(value, out),
            Escape::Header => out.extend(value.chars().filter(|c| !c.is_control())),
        }
    }
}

fn percent(value: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in value.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 0xf) as usize] as char);
        }
    }
}

fn json(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            // U+2028/2029 are valid JSON but end a line in JavaScript
            c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esc(e: Escape, v: &str) -> String {
        let mut s = String::new();
        e.write(v, &mut s);
        s
    }

    #[test]
    fn percent_encodes_everything_structural() {
        assert_eq!(esc(Escape::Percent, "a&b=c#d/e?f+g h"), "a%26b%3Dc%23d%2Fe%3Ff%2Bg%20h");
        assert_eq!(esc(Escape::Percent, "AZaz09-._~"), "AZaz09-._~");
        assert_eq!(esc(Escape::Percent, "é\n"), "%C3%A9%0A");
    }

    #[test]
    fn json_escapes_quotes_and_controls() {
        assert_eq!(esc(Escape::Json, "a\"b\\c\nd\u{1}é\u{2028}"), "a\\\"b\\\\c\\nd\\u0001é\\u2028");
    }

    #[test]
    fn header_drops_line_breaks() {
        assert_eq!(esc(Escape::Header, "a\r\nX-Evil: 1\0"), "aX-Evil: 1");
    }

    #[test]
    fn filter_arguments_are_checked() {
        assert_eq!(Filter::parse("upper:x").unwrap_err(), "filter 'upper' takes no argument");
        assert_eq!(Filter::parse("rot13").unwrap_err(), "unknown filter 'rot13'");
        assert_eq!(
            Filter::parse("revenue_share").unwrap_err(),
            "filter 'revenue_share' needs a percentage (revenue_share:30)"
        );
    }
}
