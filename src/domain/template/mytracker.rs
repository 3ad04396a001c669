//! MyTracker's postback macros, so that a template copied from MyTracker
//! loads as it is and renders the same URL. The names and their meaning
//! follow MyTracker's public pages "Postback macros" and "Postback
//! parameters" (docs.tracker.my.com); each maps to a macro of ours, with a
//! filter where MyTracker's name says how it is written (`_lc`: lower case).
//! `check-config` lists the mappings a config uses.

/// MyTracker name -> what it is here (a macro, maybe with filters).
pub const NAMES: &[(&str, &str)] = &[
    // device info
    ("mt_idfa", "idfa"),
    ("mt_waid", "waid"),
    ("mt_gaid", "gaid"),
    ("mt_gaid_lc", "gaid|lower"),
    ("mt_idfa_or_gaid", "idfa_or_gaid"),
    ("mt_idfa_upper_or_gaid_lower", "idfa_upper_or_gaid_lower"),
    ("mt_android_id", "android_id"),
    ("mt_idfv", "idfv"),
    ("mt_oaid", "oaid"),
    ("mt_app_set_id", "app_set_id"),
    // the event
    ("mt_event_ts", "event_ts"),
    ("mt_payment_sum_src", "revenue"),
    // SubID parameters of the tracking link
    ("mt_network", "partner"),
    ("mt_campaign", "campaign_id"),
    ("mt_adset", "adset"),
    ("mt_creative", "creative"),
    ("mt_medium", "medium"),
    ("mt_sub1", "sub1"),
    ("mt_sub2", "sub2"),
    ("mt_sub3", "sub3"),
    ("mt_sub4", "sub4"),
    ("mt_sub5", "sub5"),
];

/// MyTracker parameter prefix -> the macro family it is here.
pub const PREFIXES: &[(&str, &str)] = &[
    // partner parameters (set per partner or campaign)
    ("mtpp_", "partner_param:"),
    // the event's parameters (custom events)
    ("mtep_", "event_param:"),
];

/// Prefixes MyTracker's pages list without saying what they carry.
const UNKNOWN_PREFIXES: &[&str] = &["mtj_", "mtpc_", "mtap_"];

/// One name (`mt_gaid_lc`, `mtpp_sdk_key`) as ours, if it is MyTracker's.
fn ours(name: &str) -> Result<Option<String>, String> {
    if let Some((_, m)) = NAMES.iter().find(|(mt, _)| *mt == name) {
        return Ok(Some((*m).to_owned()));
    }
    for (prefix, family) in PREFIXES {
        if let Some(param) = name.strip_prefix(prefix).filter(|p| !p.is_empty()) {
            return Ok(Some(format!("{family}{param}")));
        }
    }
    if let Some(prefix) = UNKNOWN_PREFIXES.iter().find(|p| name.starts_with(**p)) {
        return Err(format!(
            "MyTracker's '{prefix}' parameters have no equivalent here: use a partner parameter ({{partner_param:NAME}}) or an event parameter ({{event_param:NAME}})"
        ));
    }
    if name.starts_with("mt_") {
        return Err(format!("unknown MyTracker macro '{name}' (docs/templates.md lists the ones postback reads)"));
    }
    Ok(None)
}

/// A macro's text with MyTracker names (the first name, and each `or:`)
/// replaced by ours; and the replacements made, for `check-config`.
pub fn translate(body: &str) -> Result<(String, Vec<(String, String)>), String> {
    let mut aliases = Vec::new();
    let mut parts = Vec::new();
    for (i, part) in body.split('|').enumerate() {
        let (prefix, name) = match part.strip_prefix("or:") {
            Some(n) => ("or:", n),
            None if i == 0 => ("", part.trim()),
            None => ("", ""),
        };
        match (name.is_empty(), ours(name)?) {
            (false, Some(m)) => {
                aliases.push((name.to_owned(), m.clone()));
                parts.push(format!("{prefix}{m}"));
            }
            _ => parts.push(part.to_owned()),
        }
    }
    Ok((parts.join("|"), aliases))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_prefixes_become_ours() {
        assert_eq!(
            translate("mt_gaid_lc|sha1").unwrap(),
            ("gaid|lower|sha1".into(), vec![("mt_gaid_lc".into(), "gaid|lower".into())])
        );
        assert_eq!(translate("mtpp_sdk_key").unwrap().0, "partner_param:sdk_key");
        assert_eq!(translate("mtep_level|or:mt_sub1").unwrap().0, "event_param:level|or:sub1");
        assert_eq!(translate("click_id|default:x").unwrap(), ("click_id|default:x".into(), vec![]));
        assert_eq!(
            translate("mtj_x").unwrap_err(),
            "MyTracker's 'mtj_' parameters have no equivalent here: use a partner parameter ({partner_param:NAME}) or an event parameter ({event_param:NAME})"
        );
        assert_eq!(
            translate("mt_nope").unwrap_err(),
            "unknown MyTracker macro 'mt_nope' (docs/templates.md lists the ones postback reads)"
        );
    }
}
