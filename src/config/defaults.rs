//! Partner defaults: a partner's `base_url`, `query` and `headers`, which
//! its postbacks (and a preset's) inherit, so that N postbacks of one
//! partner do not repeat its address, its key parameter and its headers.

use super::model::{PartnerConfig, PostbackConfig};

/// `pc` as its partner's defaults complete it: a relative URL (`/path…`,
/// `?query…`, or empty) joined to `base_url`; the partner's `query`
/// parameters the URL does not set appended; the partner's headers the
/// postback does not set added.
pub fn apply(pc: &PostbackConfig, partner: Option<&PartnerConfig>) -> Result<PostbackConfig, (String, String)> {
    let Some(p) = partner else { return Ok(pc.clone()) };
    let mut out = pc.clone();
    let absolute = pc.url.starts_with("http://") || pc.url.starts_with("https://");
    if !absolute {
        let Some(base) = &p.base_url else {
            return Err((
                ".url".into(),
                format!("'{}' is relative, but partner '{}' has no base_url to start it from", pc.url, p.id),
            ));
        };
        out.url = join(base, &pc.url);
    }
    for (name, value) in &p.query {
        if !sets_param(&out.url, name) {
            let sep = if out.url.contains('?') { if out.url.ends_with(['?', '&']) { "" } else { "&" } } else { "?" };
            out.url = format!("{}{sep}{name}={value}", out.url);
        }
    }
    for (name, value) in &p.headers {
        if !out.headers.keys().any(|k| k.eq_ignore_ascii_case(name)) {
            out.headers.insert(name.clone(), value.clone());
        }
    }
    Ok(out)
}

/// `base` + `rel`: `/path` goes after the base's path (one slash between),
/// `?query` and the empty string after the base as it is.
fn join(base: &str, rel: &str) -> String {
    match rel.strip_prefix('/') {
        Some(path) => format!("{}/{path}", base.trim_end_matches('/')),
        None => format!("{base}{rel}"),
    }
}

/// Whether the URL template's query already sets `name`.
fn sets_param(url: &str, name: &str) -> bool {
    let Some((_, query)) = url.split_once('?') else { return false };
    let query = query.split('#').next().unwrap_or("");
    query.split('&').any(|pair| pair.split('=').next() == Some(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_join_and_take_the_partners_query() {
        assert_eq!(join("https://t.example/postback", "?cid={click_id}"), "https://t.example/postback?cid={click_id}");
        assert_eq!(join("https://t.example/games/", "/7/install"), "https://t.example/games/7/install");
        assert_eq!(join("https://t.example/hook", ""), "https://t.example/hook");
        assert!(sets_param("https://x/?a=1&key={k}#f", "key"));
        assert!(!sets_param("https://x/?a=1&keys=2", "key"));
        assert!(!sets_param("https://x/key", "key"));
    }
}
