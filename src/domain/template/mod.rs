//! URL, header and body templates (docs/design.md §2.1).
//!
//! A template is parsed once, at config load, into literal text and macro
//! segments; each macro segment knows how its value must be escaped where it
//! stands. Rendering cannot fail: a missing value renders empty (or its
//! `default:`). `{{` and `}}` are literal braces (JSON bodies need them).

mod encode;
mod macros;
pub mod mytracker;
#[cfg(test)]
mod tests;

pub use encode::{Escape, Filter};
pub use macros::{CATALOGUE, Macro};

use super::app::Platform;
use super::event::Event;
use super::state::Attributed;
use super::when::Rates;
use std::borrow::Cow;
use std::fmt;

/// Where a template is used; decides escaping and what is checked at load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    Url,
    Header,
    JsonBody,
    FormBody,
}

/// A load error: the column (1-based, in characters) and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    pub column: usize,
    pub reason: String,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "column {}: {}", self.column, self.reason)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Value(Value),
}

/// `{idfa|upper|or:gaid|lower|default:none}`: the first branch that renders
/// non-empty, else the default, then escaped for its place.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Value {
    branches: Vec<Branch>,
    default: Option<String>,
    escape: Escape,
    /// MyTracker names written here, with what they stand for.
    aliases: Vec<(String, String)>,
}

/// A macro with the filters written after it (before the next `or:`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Branch {
    source: Macro,
    filters: Vec<Filter>,
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    segments: Vec<Segment>,
    /// A URL with a macro in its path: see [`neutralize_dot_segments`].
    path_macros: bool,
}

/// Everything a rendering may read.
#[derive(Debug, Clone, Copy)]
pub struct RenderCtx<'a> {
    pub event: &'a Event,
    /// The attribution the postback is sent in.
    pub attribution: &'a Attributed,
    pub install_ms: i64,
    pub platform: Platform,
    /// The postback event name (`{event}`).
    pub postback_event: &'a str,
    /// The partner's parameters and event names.
    pub partner: Option<&'a crate::domain::rules::PartnerParams>,
    pub job_id: &'a str,
    /// `[currency_rates]`, for `{revenue_usd}`.
    pub usd_rates: &'a Rates,
    /// What the device allows (`{limit_ad_tracking}`, `{consent:NAME}`, …).
    pub privacy: &'a crate::domain::privacy::Privacy,
    /// The partner's privacy policy strips the device's identifiers, IP
    /// and user agent: those macros render empty.
    pub strip: bool,
}

impl Template {
    pub fn parse(source: &str, place: Place) -> Result<Template, TemplateError> {
        let segments = parse_segments(source, place)?;
        let path_macros = place == Place::Url && has_path_macro(&segments);
        let template = Template { source: source.to_owned(), segments, path_macros };
        if place == Place::Url {
            template.check_url()?;
        }
        Ok(template)
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// The MyTracker macros the template was written with, each with what
    /// it stands for here (`mt_gaid_lc` -> `gaid|lower`).
    pub fn aliases(&self) -> impl Iterator<Item = &(String, String)> {
        self.segments.iter().flat_map(|s| match s {
            Segment::Value(v) => v.aliases.iter().collect(),
            Segment::Literal(_) => Vec::new(),
        })
    }

    /// The macros used (every branch of every `or:`), for load checks.
    pub fn macros(&self) -> impl Iterator<Item = &Macro> {
        self.segments.iter().flat_map(|s| match s {
            Segment::Value(v) => v.branches.iter().map(|b| &b.source).collect(),
            Segment::Literal(_) => Vec::new(),
        })
    }

    pub fn render(&self, ctx: &RenderCtx<'_>) -> String {
        let mut out = String::with_capacity(self.source.len() + 64);
        self.render_into(ctx, &mut out);
        out
    }

    pub fn render_into(&self, ctx: &RenderCtx<'_>, out: &mut String) {
        let start = out.len();
        for segment in &self.segments {
            match segment {
                Segment::Literal(text) => out.push_str(text),
                Segment::Value(v) => v.escape.write(&v.resolve(ctx), out),
            }
        }
        if self.path_macros {
            neutralize_dot_segments(out, start);
        }
    }

    /// Renders with a sample value in every macro and checks that the result
    /// is an absolute http(s) URL.
    fn check_url(&self) -> Result<(), TemplateError> {
        let mut sample = String::new();
        for segment in &self.segments {
            match segment {
                Segment::Literal(text) => sample.push_str(text),
                Segment::Value(_) => sample.push('x'),
            }
        }
        let err = |reason: String| TemplateError { column: 1, reason };
        let url = url::Url::parse(&sample).map_err(|e| err(format!("not a valid URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(err(format!("scheme must be http or https, not '{}'", url.scheme())));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(err("the URL has no host".to_owned()));
        }
        if path_segments(&sample, 0).into_iter().any(|(a, b)| is_dot_segment(&sample[a..b])) {
            return Err(err("the URL path has a '.' or '..' segment".to_owned()));
        }
        Ok(())
    }
}

/// Whether a macro stands in a URL's path (after the host, before `?`/`#`).
fn has_path_macro(segments: &[Segment]) -> bool {
    let mut text = String::new();
    for segment in segments {
        match segment {
            Segment::Literal(t) => text.push_str(t),
            Segment::Value(_) if host_ended(&text) && !text.contains(['?', '#']) => return true,
            Segment::Value(_) => text.push('x'),
        }
    }
    false
}

/// (start, end) of each path segment of the URL that starts at `url[from..]`.
fn path_segments(url: &str, from: usize) -> Vec<(usize, usize)> {
    let Some(scheme) = url[from..].find("://") else { return Vec::new() };
    let host = from + scheme + 3;
    let Some(path) = url[host..].find(['/', '?', '#']).map(|p| host + p) else { return Vec::new() };
    if url.as_bytes()[path] != b'/' {
        return Vec::new();
    }
    let end = url[path..].find(['?', '#']).map_or(url.len(), |p| path + p);
    let mut out = Vec::new();
    let mut start = path + 1;
    for (i, b) in url.bytes().enumerate().take(end).skip(path + 1) {
        if b == b'/' {
            out.push((start, i));
            start = i + 1;
        }
    }
    out.push((start, end));
    out
}

fn is_dot_segment(s: &str) -> bool {
    s == "." || s == ".."
}

/// A path segment that renders as `.` or `..` would be resolved away by
/// every URL parser (the WHATWG rules also treat `%2E` as a dot), so a
/// value could move the request up the partner's path. Such a segment is
/// sent with its dots encoded twice (`%252E`): the partner reads `%2E`, a
/// value, and the path stays as the template wrote it.
fn neutralize_dot_segments(url: &mut String, from: usize) {
    let dots: Vec<(usize, usize)> =
        path_segments(url, from).into_iter().filter(|&(a, b)| is_dot_segment(&url[a..b])).collect();
    for (a, b) in dots.into_iter().rev() {
        let encoded = "%252E".repeat(b - a);
        url.replace_range(a..b, &encoded);
    }
}

fn parse_segments(source: &str, place: Place) -> Result<Vec<Segment>, TemplateError> {
    let chars: Vec<char> = source.chars().collect();
    let mut segments = Vec::new();
    let mut literal = String::new();
    // Escaping is the same in path, query and fragment, so the only part of
    // a URL that matters is the scheme and host, where macros are refused:
    // a value there could send the postback to another server.
    let mut past_host = place != Place::Url;
    let mut i = 0;
    while i < chars.len() {
        match (chars[i], chars.get(i + 1)) {
            ('{', Some('{')) | ('}', Some('}')) => {
                literal.push(chars[i]);
                i += 2;
            }
            ('}', _) => return Err(error(i + 1, "unbalanced '}' (write '}}' for a literal brace)")),
            ('{', _) => {
                let Some(close) = chars[i + 1..].iter().position(|c| *c == '}').map(|p| i + 1 + p) else {
                    return Err(error(i + 1, "unbalanced '{': no closing '}'"));
                };
                past_host = past_host || host_ended(&literal);
                if !past_host {
                    return Err(error(i + 1, "macros are not allowed in the scheme or host of a URL"));
                }
                if !literal.is_empty() {
                    segments.push(Segment::Literal(std::mem::take(&mut literal)));
                }
                let body: String = chars[i + 1..close].iter().collect();
                segments.push(
                    parse_macro(&body, escape_for(place)).map_err(|reason| TemplateError { column: i + 2, reason })?,
                );
                i = close + 1;
            }
            (c, _) => {
                literal.push(c);
                i += 1;
            }
        }
    }
    if !literal.is_empty() {
        segments.push(Segment::Literal(literal));
    }
    Ok(segments)
}

fn error(column: usize, reason: &str) -> TemplateError {
    TemplateError { column, reason: reason.to_owned() }
}

/// The host of "scheme://host..." ends at the first '/', '?' or '#'.
fn host_ended(prefix: &str) -> bool {
    prefix.find("://").is_some_and(|p| prefix[p + 3..].contains(['/', '?', '#']))
}

fn escape_for(place: Place) -> Escape {
    match place {
        Place::Url | Place::FormBody => Escape::Percent,
        Place::JsonBody => Escape::Json,
        Place::Header => Escape::Header,
    }
}

impl Value {
    fn resolve<'a>(&self, ctx: &RenderCtx<'a>) -> Cow<'a, str> {
        for branch in &self.branches {
            let mut value = branch.source.resolve(ctx);
            for filter in &branch.filters {
                value = filter.apply(value, ctx);
            }
            if !value.is_empty() {
                return value;
            }
        }
        self.default.as_deref().map_or(Cow::Borrowed(""), |d| Cow::Owned(d.to_owned()))
    }
}

/// `name|filter|or:other|filter|default:text`. The filters written after a
/// macro apply to it; a branch without filters of its own takes those of
/// the last branch, so `{idfa|or:gaid|lower}` lowers both and
/// `{idfa|upper|or:gaid|lower}` only gaid.
fn parse_macro(body: &str, escape: Escape) -> Result<Segment, String> {
    // MyTracker's names first become ours, filters and all
    let (body, aliases) = mytracker::translate(body)?;
    let mut parts = body.split('|');
    let first = parts.next().unwrap_or("").trim();
    if first.is_empty() {
        return Err("empty macro '{}'".into());
    }
    let mut branches = vec![Branch { source: Macro::parse(first)?, filters: Vec::new() }];
    let mut default = None;
    for part in parts {
        let (name, arg) = part.split_once(':').map_or((part, None), |(n, a)| (n, Some(a)));
        match (name, arg) {
            ("or" | "default", None) => return Err(format!("filter '{name}' needs an argument ({name}:...)")),
            (_, _) if default.is_some() => return Err("'default:' must come last".into()),
            ("or", Some(other)) => branches.push(Branch { source: Macro::parse(other)?, filters: Vec::new() }),
            ("default", Some(text)) => default = Some(text.to_owned()),
            _ => branches.last_mut().expect("one branch").filters.push(Filter::parse(part)?),
        }
    }
    let shared = branches.last().expect("one branch").filters.clone();
    for branch in branches.iter_mut().filter(|b| b.filters.is_empty()) {
        branch.filters.clone_from(&shared);
    }
    let hashed: Vec<bool> = branches.iter().map(|b| b.filters.iter().any(Filter::hashes)).collect();
    if hashed.iter().any(|h| *h) && !hashed.iter().all(|h| *h) {
        return Err("one side of 'or:' is hashed and another is not: the partner would get a raw identifier where it \
             expects a hash (hash every branch, e.g. {idfa|sha1|or:gaid|sha1})"
            .into());
    }
    Ok(Segment::Value(Value { branches, default, escape, aliases }))
}
