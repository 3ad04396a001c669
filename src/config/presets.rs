//! Ready-made partners: `[[partners]] preset = "voluum"` brings that
//! partner's postbacks, URL formats and defaults from a data file in
//! `presets/` (one per partner, each naming the public documentation it
//! follows), and `[partners.events]` picks which of them to send and how.
//! The user sets only what is theirs — sending modes, credentials and keys
//! as partner parameters, their own tracking domain — and may override any
//! generated postback with a `[[postbacks]]` of the same id.
//!
//! Expansion happens before validation, so a preset's postbacks are checked
//! like any others; errors name the partner's key that asked for them.

use super::model::{BodyFormat, ByName, FileConfig, PartnerConfig, PostbackConfig, RoutingName, SendingName};
use crate::domain::Method;
use serde::Deserialize;
use std::collections::BTreeMap;

/// The preset files, compiled in: the binary carries them.
const FILES: &[(&str, &str)] = &[
    ("affise", include_str!("../../presets/affise.toml")),
    ("keitaro", include_str!("../../presets/keitaro.toml")),
    ("scaleo", include_str!("../../presets/scaleo.toml")),
    ("taboola", include_str!("../../presets/taboola.toml")),
    ("unity-ads", include_str!("../../presets/unity-ads.toml")),
    ("voluum", include_str!("../../presets/voluum.toml")),
    ("webhook", include_str!("../../presets/webhook.toml")),
];

/// One preset file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preset {
    pub preset: About,
    /// Partner defaults the preset brings (the user's keys win).
    #[serde(default)]
    pub partner: Defaults,
    pub postbacks: Vec<PresetPostback>,
}

/// What the preset is and where its format is documented.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct About {
    pub id: String,
    pub name: String,
    pub about: String,
    /// The public documentation the file follows.
    pub sources: Vec<String>,
    /// What the user must set: partner parameters, and `base_url` when the
    /// partner's host is per customer.
    #[serde(default)]
    pub params: BTreeMap<String, Param>,
    /// What `base_url` is, when the partner's host is per customer (no
    /// `partner.base_url`).
    #[serde(default)]
    pub base_url_help: Option<String>,
    /// The partner must have a `signing_secret` (postback's own webhook).
    #[serde(default)]
    pub requires_signing: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Param {
    /// Without it the partner refuses the postback.
    #[serde(default)]
    pub required: bool,
    pub about: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    pub base_url: Option<String>,
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub event_names: BTreeMap<String, String>,
    #[serde(default)]
    pub params: BTreeMap<String, String>,
}

/// One ready-made postback.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PresetPostback {
    /// Its key in `[partners.events]`; `custom_event` stands for every
    /// `custom_event:NAME` the user enables.
    pub id: String,
    pub about: String,
    pub event: String,
    pub by: Option<ByName>,
    pub attribution: Option<RoutingName>,
    #[serde(default)]
    pub verified_only: bool,
    #[serde(default = "get")]
    pub method: Method,
    pub url: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub body: Option<String>,
    #[serde(default)]
    pub body_format: BodyFormat,
}

fn get() -> Method {
    Method::Get
}

/// Every preset, parsed (a broken file is a bug caught by the unit tests).
pub fn all() -> Vec<Preset> {
    FILES.iter().map(|(id, text)| parse(id, text)).collect()
}

fn parse(id: &str, text: &str) -> Preset {
    let p: Preset = toml::from_str(text).unwrap_or_else(|e| panic!("presets/{id}.toml: {e}"));
    assert_eq!(p.preset.id, id, "presets/{id}.toml names itself");
    p
}

pub fn get_preset(id: &str) -> Option<Preset> {
    FILES.iter().find(|(i, _)| *i == id).map(|(i, text)| parse(i, text))
}

/// `postback partners list`.
pub fn list_text() -> String {
    let mut out = format!("{:<12} {:<12} {:<9} {}\n", "preset", "name", "postbacks", "documented at");
    for p in all() {
        out.push_str(&format!(
            "{:<12} {:<12} {:<9} {}\n",
            p.preset.id,
            p.preset.name,
            p.postbacks.len(),
            p.preset.sources.first().map_or("", String::as_str)
        ));
    }
    out
}

/// `postback partners show NAME`.
pub fn show_text(id: &str) -> Option<String> {
    let p = get_preset(id)?;
    let mut out = format!("{} ({})\n{}\n\nsources:\n", p.preset.name, p.preset.id, p.preset.about);
    for s in &p.preset.sources {
        out.push_str(&format!("  {s}\n"));
    }
    out.push_str("\nyou set:\n");
    match (&p.partner.base_url, &p.preset.base_url_help) {
        (Some(base), _) => out.push_str(&format!("  base_url       (default {base})\n")),
        (None, help) => out
            .push_str(&format!("  base_url       required: {}\n", help.as_deref().unwrap_or("the partner's address"))),
    }
    if p.preset.requires_signing {
        out.push_str("  signing_secret required: every request is signed\n");
    }
    for (name, param) in &p.preset.params {
        let need = if param.required { "required" } else { "optional" };
        out.push_str(&format!("  params.{name:<8} {need}: {}\n", param.about));
    }
    out.push_str("  events         which postbacks to send, and how: install = \"attributed\" (or \"all\")\n");
    if !p.partner.event_names.is_empty() {
        out.push_str("\nevent names ({partner_event}; override in [partners.event_names]):\n");
        for (event, name) in &p.partner.event_names {
            out.push_str(&format!("  {event:<22} {name}\n"));
        }
    }
    out.push_str("\npostbacks:\n");
    for pb in &p.postbacks {
        let flavour = match pb.attribution {
            Some(RoutingName::Ca) => " (ca)",
            _ => "",
        };
        out.push_str(&format!("  {}{flavour}: {}\n    {} {}\n", pb.id, pb.about, pb.method.as_str(), pb.url));
        if let Some(body) = &pb.body {
            out.push_str(&format!("    body {body}\n"));
        }
    }
    Some(out)
}

type Errors = Vec<(String, String)>;

/// Fills in the partners that name a preset and returns the postbacks they
/// enable, each with the key that asked for it (`partners[0].events."install"`).
/// A `[[postbacks]]` with the same id overrides a generated one.
pub fn expand(raw: &mut FileConfig, errors: &mut Errors) -> Vec<(String, PostbackConfig)> {
    let mut out = Vec::new();
    let own_ids: Vec<String> = raw.postbacks.iter().filter_map(|p| p.id.clone()).collect();
    for (i, partner) in raw.partners.iter_mut().enumerate() {
        let Some(name) = partner.preset.clone() else {
            if !partner.events.is_empty() {
                errors.push((format!("partners[{i}].events"), "only a partner with a `preset` takes `events`".into()));
            }
            continue;
        };
        let key = format!("partners[{i}]");
        let Some(preset) = get_preset(&name) else {
            let known: Vec<&str> = FILES.iter().map(|(id, _)| *id).collect();
            errors.push((format!("{key}.preset"), format!("unknown preset '{name}' (presets: {})", known.join(", "))));
            continue;
        };
        apply_defaults(partner, &preset, &key, errors);
        for (event, sending) in &partner.events {
            match generate(partner, &preset, event, *sending) {
                Ok(pc) if own_ids.contains(pc.id.as_ref().expect("generated ids")) => {}
                Ok(pc) => out.push((format!("{key}.events.\"{event}\""), pc)),
                Err(why) => errors.push((format!("{key}.events.\"{event}\""), why)),
            }
        }
    }
    out
}

/// The preset's defaults under the partner's own keys; the required
/// parameters present.
fn apply_defaults(partner: &mut PartnerConfig, preset: &Preset, key: &str, errors: &mut Errors) {
    let d = &preset.partner;
    if partner.base_url.is_none() {
        partner.base_url = d.base_url.clone();
    }
    if partner.base_url.is_none() {
        let help = preset.preset.base_url_help.as_deref().unwrap_or("the partner's postback address");
        errors.push((format!("{key}.base_url"), format!("preset '{}' needs base_url: {help}", preset.preset.id)));
    }
    for (map, defaults) in [
        (&mut partner.query, &d.query),
        (&mut partner.headers, &d.headers),
        (&mut partner.event_names, &d.event_names),
        (&mut partner.params, &d.params),
    ] {
        for (k, v) in defaults {
            map.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    if partner.name.is_empty() {
        partner.name = preset.preset.name.clone();
    }
    if preset.preset.requires_signing && partner.signing_secret.is_none() {
        errors.push((
            format!("{key}.signing_secret"),
            format!("preset '{}' signs every request: set signing_secret", preset.preset.id),
        ));
    }
    for (name, p) in preset.preset.params.iter().filter(|(_, p)| p.required) {
        let everywhere = partner.params.contains_key(name)
            || (!partner.campaign_params.is_empty() && partner.campaign_params.values().all(|c| c.contains_key(name)));
        if !everywhere {
            errors.push((
                format!("{key}.params.{name}"),
                format!("preset '{}' needs partner parameter '{name}': {}", preset.preset.id, p.about),
            ));
        }
    }
}

/// The postback `event` (`install`, `custom_event:level_up`) of the preset,
/// for `partner`, sent as `sending` says.
fn generate(
    partner: &PartnerConfig,
    preset: &Preset,
    event: &str,
    sending: SendingName,
) -> Result<PostbackConfig, String> {
    // `custom_event:level_up` is the preset's `custom_event` postback for
    // the app's event level_up
    let (template_id, custom) = match event.split_once(':') {
        Some((t, name)) if !name.is_empty() => (t, Some(name.to_owned())),
        _ => (event, None),
    };
    let Some(pp) = preset.postbacks.iter().find(|p| p.id == template_id) else {
        let ids: Vec<&str> = preset.postbacks.iter().map(|p| p.id.as_str()).collect();
        return Err(format!(
            "preset '{}' has no postback '{event}' (it has: {}; a custom event as \"custom_event:NAME\")",
            preset.preset.id,
            ids.join(", ")
        ));
    };
    match (pp.event == "custom_event", &custom) {
        (true, None) => return Err(format!("name the app's custom event: \"{template_id}:NAME\"")),
        (false, Some(_)) => {
            return Err(format!("postback '{template_id}' is not for custom events: write \"{template_id}\""));
        }
        _ => {}
    }
    let id = format!("{}.{}", partner.id, event.replace(':', "."));
    Ok(PostbackConfig {
        name: format!("{} | {event}", if partner.name.is_empty() { &partner.id } else { &partner.name }),
        id: Some(id),
        partner: partner.id.clone(),
        event: pp.event.clone(),
        by: pp.by,
        attribution: pp.attribution,
        custom_event: custom,
        sending,
        apps: None,
        campaigns: Vec::new(),
        verified_only: pp.verified_only,
        window: None,
        share_other_attribution: false,
        when: None,
        occurrence: None,
        method: pp.method,
        url: pp.url.clone(),
        headers: pp.headers.clone(),
        body: pp.body.clone(),
        body_format: pp.body_format,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_file_parses_names_itself_and_its_sources() {
        for p in all() {
            assert!(!p.preset.sources.is_empty(), "{} names its sources", p.preset.id);
            // a partner's public page, or for our own webhook a page of ours
            let ok = |s: &String| {
                s.starts_with("https://") || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(s).is_file()
            };
            assert!(p.preset.sources.iter().all(ok), "{}: {:?}", p.preset.id, p.preset.sources);
            assert!(!p.postbacks.is_empty(), "{}", p.preset.id);
            let mut ids: Vec<&str> = p.postbacks.iter().map(|pb| pb.id.as_str()).collect();
            ids.sort();
            ids.dedup();
            assert_eq!(ids.len(), p.postbacks.len(), "{}: postback ids are unique", p.preset.id);
        }
    }
}
