//! Secrets never printed: the config's secret values (every value a
//! `${env:…}`/`${file:…}` reference brought in, and the values of keys that
//! hold credentials) are collected in a [`Redactor`], and every text that
//! leaves the process for a human — log lines, `check-config`, `postback
//! test`, config errors — passes through it, each secret replaced by `***`.
//!
//! Replacing by value rather than by key catches a secret wherever it went:
//! into a URL template, an error quoting a value, a header. Its percent-encoded
//! form is replaced too (a partner parameter rendered into a URL). Secrets
//! shorter than [`MIN_LEN`] are not searched for in free text — masking every
//! "1" would garble the output without protecting anything — and the config
//! reference says so.

use std::borrow::Cow;
use std::sync::{Arc, RwLock};

/// Shortest secret searched for in free text.
pub const MIN_LEN: usize = 4;

/// What a secret is replaced with.
pub const MASK: &str = "***";

/// The secret values to mask, longest first (a secret containing another
/// is masked whole).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Redactor {
    needles: Vec<String>,
}

impl Redactor {
    pub fn new() -> Redactor {
        Redactor::default()
    }

    /// Adds a secret (and its percent-encoded form).
    pub fn add(&mut self, secret: &str) {
        if secret.len() < MIN_LEN {
            return;
        }
        // as templates escape a query value: RFC 3986's unreserved kept
        const SET: &percent_encoding::AsciiSet =
            &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');
        let encoded = percent_encoding::utf8_percent_encode(secret, SET).to_string();
        for s in [secret.to_owned(), encoded] {
            if !self.needles.contains(&s) {
                self.needles.push(s);
            }
        }
        self.needles.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    }

    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }

    /// `text` with every secret replaced by [`MASK`].
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        if !self.needles.iter().any(|n| text.contains(n.as_str())) {
            return Cow::Borrowed(text);
        }
        let mut out = text.to_owned();
        for n in &self.needles {
            if out.contains(n.as_str()) {
                out = out.replace(n.as_str(), MASK);
            }
        }
        Cow::Owned(out)
    }
}

static GLOBAL: RwLock<Option<Arc<Redactor>>> = RwLock::new(None);

/// Makes `r` the redactor of log lines (at start and on every reload; the
/// secrets of the previous config are kept too, so a log line about the
/// old config does not leak what it held).
pub fn install(r: &Redactor) {
    let mut global = GLOBAL.write().unwrap_or_else(|e| e.into_inner());
    let mut merged = global.as_deref().cloned().unwrap_or_default();
    for n in &r.needles {
        if !merged.needles.contains(n) {
            merged.needles.push(n.clone());
        }
    }
    merged.needles.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    *global = Some(Arc::new(merged));
}

/// `text` through the installed redactor.
pub fn redact_global(text: &str) -> Cow<'_, str> {
    let global = GLOBAL.read().unwrap_or_else(|e| e.into_inner());
    match global.as_deref() {
        Some(r) => Cow::Owned(r.redact(text).into_owned()),
        None => Cow::Borrowed(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_raw_and_percent_encoded_longest_first() {
        let mut r = Redactor::new();
        r.add("s3cr3t/+key");
        r.add("s3cr3t");
        r.add("abc");
        assert_eq!(r.redact("k=s3cr3t/+key&k2=s3cr3t%2F%2Bkey&k3=s3cr3t&x=abc"), "k=***&k2=***&k3=***&x=abc");
        assert!(matches!(r.redact("nothing here"), Cow::Borrowed(_)));
    }
}
