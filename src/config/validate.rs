//! Cross-checks of a parsed config and compilation into domain types:
//! referenced apps and partners exist, ids are unique, events fit their apps'
//! platforms, templates parse.

use super::conditions;
use super::model::*;
use super::{Config, HumanDuration, MAX_RECORD_BYTES, STATE_COPIES};
use crate::domain::app::DEFAULT_PROJECT;
use crate::domain::template::{Place, Template};
use crate::domain::when::Rates;
use crate::domain::{App, PartnerParams, Postback, PostbackEvent, Routing, Rules, Scope, Sending};
use ipnet::IpNet;
use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

type Errors = Vec<(String, String)>;

pub fn build(mut raw: FileConfig, path: &Path) -> Result<Config, Errors> {
    let mut errors = Errors::new();
    // a preset's postbacks are checked like the file's own
    let generated = super::presets::expand(&mut raw, &mut errors);
    check_sections(&raw, &mut errors);
    check_client_settings(&raw.kafka, &mut errors);
    check_durations(&raw, &mut errors);
    check_input(&raw.input, &mut errors);
    let mapping = compile_mapping(&raw.input, &mut errors);
    check_registry(raw.schema_registry.as_ref(), &mut errors);
    let apps = build_apps(&raw.apps, &mut errors);
    check_partners(&raw.partners, &mut errors);
    let allow_networks = parse_networks(&raw.send.allow_networks, &mut errors);
    let rates = conditions::rates(&raw.currency_rates, &mut |k, r| errors.push((k, r)));
    let postbacks = build_postbacks(&raw, &generated, &apps, &rates, &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    let params = raw
        .partners
        .iter()
        .map(|p| {
            let params = PartnerParams {
                campaign_params: p.campaign_params.clone(),
                params: p.params.clone(),
                event_names: p.event_names.clone(),
                privacy: privacy_policy(&p.privacy),
            };
            (p.id.clone(), params)
        })
        .collect();
    Ok(Config {
        path: path.to_owned(),
        rules: Arc::new(Rules::new(apps, params, postbacks).with_rates(rates)),
        kafka: raw.kafka,
        topics: raw.topics,
        process: raw.process,
        send: raw.send,
        admin: raw.admin,
        input: raw.input,
        mapping,
        schema_registry: raw.schema_registry,
        partners: raw.partners,
        allow_networks,
        allow_empty: false,
        needs: super::Needs::default(),
        secrets: Arc::default(),
        secret_files: Vec::new(),
        secret_digest: 0,
    })
}

/// `[kafka.client]`, `[kafka.consumer]`, `[kafka.producer]`: no key that
/// exactly-once depends on ([`super::guard`]).
fn check_client_settings(kafka: &KafkaConfig, errors: &mut Errors) {
    for (section, map) in [("client", &kafka.client), ("consumer", &kafka.consumer), ("producer", &kafka.producer)] {
        for key in map.keys() {
            if let Some(why) = super::guard::refused(key) {
                errors.push((format!("kafka.{section}.\"{key}\""), format!("may not be set: {why}")));
            }
        }
    }
}

/// Ids end up in Kafka keys ("app:device"), metric labels and file names.
fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

const ID_RULE: &str = "must be 1-128 characters of letters, digits, '.', '_' or '-'";

/// Most partitions a topic postback creates may have (Kafka's practical
/// bound per topic is far lower than its hard one).
const MAX_PARTITIONS: i32 = 10_000;
/// More processing threads than this is a typo, not a machine.
const MAX_THREADS: usize = 256;

fn check_sections(raw: &FileConfig, errors: &mut Errors) {
    let mut err = |k: &str, r: String| errors.push((k.to_owned(), r));
    if raw.kafka.bootstrap_servers.trim().is_empty() {
        err("kafka.bootstrap_servers", "must not be empty".into());
    }
    if let Some(id) = &raw.kafka.instance_id {
        if !valid_id(id) {
            err("kafka.instance_id", ID_RULE.into());
        }
    }
    let t = &raw.topics;
    let topics = [
        ("topics.events", &t.events),
        ("topics.events_dlq", &t.events_dlq),
        ("topics.user_activity", &t.user_activity),
        ("topics.device_events", &t.device_events),
        ("topics.layout", &t.layout),
        ("topics.device_changelog", &t.device_changelog),
        ("topics.user_changelog", &t.user_changelog),
        ("topics.jobs", &t.jobs),
        ("topics.jobs_retry_prefix", &t.jobs_retry_prefix),
        ("topics.jobs_dlq", &t.jobs_dlq),
        ("topics.deliveries", &t.deliveries),
    ];
    let mut seen = HashSet::new();
    for (key, name) in topics {
        if !valid_id(name) {
            err(key, format!("topic name '{name}' {ID_RULE}"));
        } else if !seen.insert(name.as_str()) {
            err(key, format!("topic '{name}' is used twice"));
        }
    }
    if t.jobs_partitions < 1 {
        err("topics.jobs_partitions", "must be at least 1".into());
    }
    if t.user_activity_partitions.is_some_and(|n| n < 1) {
        err("topics.user_activity_partitions", "must be at least 1".into());
    }
    if t.replication_factor == 0 || t.replication_factor < -1 {
        err("topics.replication_factor", "must be -1 (broker default) or at least 1".into());
    }
    if raw.process.state_partitions.is_some_and(|n| !(1..=MAX_PARTITIONS).contains(&n)) {
        err("process.state_partitions", format!("must be between 1 and {MAX_PARTITIONS}"));
    }
    if raw.process.threads.is_some_and(|n| !(1..=MAX_THREADS).contains(&n)) {
        err("process.threads", format!("must be between 1 and {MAX_THREADS}"));
    }
    if raw.process.max_batch == 0 {
        err("process.max_batch", "must be at least 1".into());
    }
    if raw.process.max_batch_bytes < 65_536 {
        err("process.max_batch_bytes", "must be at least 65536".into());
    }
    let s = &raw.send;
    if s.retry_delays.is_empty() {
        err("send.retry_delays", "needs at least one tier".into());
    }
    if let Some(proxy) = &s.proxy {
        if reqwest::Proxy::all(proxy).is_err() || url::Url::parse(proxy).is_err() {
            err("send.proxy", format!("'{proxy}' is not a proxy URL such as http://proxy:3128"));
        }
    }
    if !(0.0..1.0).contains(&s.retry_jitter) {
        err("send.retry_jitter", "must be in [0, 1)".into());
    }
    if !(1..=100).contains(&s.retry_after_factor) {
        err("send.retry_after_factor", "must be between 1 and 100".into());
    }
    if s.max_in_flight == 0 {
        err("send.max_in_flight", "must be at least 1".into());
    }
    if s.max_pending_per_partner == 0 {
        err("send.max_pending_per_partner", "must be at least 1".into());
    }
    if let Some(listen) = raw.admin.listen.as_ref().filter(|l| l.parse::<std::net::SocketAddr>().is_err()) {
        err("admin.listen", format!("'{listen}' is not an address such as 0.0.0.0:9464"));
    }
    if raw.admin.inspect_token.as_ref().is_some_and(|t| t.len() < 16) {
        err("admin.inspect_token", "must be at least 16 characters".into());
    }
    // the default address (0.0.0.0) is reachable from the network
    let listen = raw.admin.listen.as_deref().unwrap_or("0.0.0.0:9464");
    let loopback = listen.parse::<std::net::SocketAddr>().is_ok_and(|a| a.ip().is_loopback());
    if raw.admin.inspect && raw.admin.inspect_token.is_none() && !loopback {
        err(
            "admin.inspect",
            format!(
                "/inspect shows stored device identifiers, IPs and user ids: on {listen}, reachable from the network, it needs admin.inspect_token (or admin.listen on 127.0.0.1)"
            ),
        );
    }
}

const MS: Duration = Duration::from_millis(1);
const SEC: Duration = Duration::from_secs(1);
const MIN: Duration = Duration::from_secs(60);
const DAY: Duration = Duration::from_secs(86_400);

/// Every duration within sane bounds: a typo such as "106751991160d" must
/// be refused here, not overflow a timestamp in the middle of the night.
fn check_durations(raw: &FileConfig, errors: &mut Errors) {
    let (p, s) = (&raw.process, &raw.send);
    let mut checks: Vec<(String, HumanDuration, Duration, Duration)> = vec![
        ("process.commit_interval".into(), p.commit_interval, MS, MIN),
        ("process.job_ttl".into(), p.job_ttl, SEC, 30 * DAY),
        ("process.shutdown_deadline".into(), p.shutdown_deadline, SEC, 10 * MIN),
        ("send.connect_timeout".into(), s.connect_timeout, MS, 5 * MIN),
        ("send.timeout".into(), s.timeout, MS, 15 * MIN),
        ("send.shutdown_deadline".into(), s.shutdown_deadline, Duration::ZERO, 10 * MIN),
        ("send.circuit_open_for".into(), s.circuit_open_for, MS, DAY),
        ("send.commit_interval".into(), s.commit_interval, MS, MIN),
        ("send.max_hold".into(), s.max_hold, MS, 10 * MIN),
        ("topics.dlq_retention".into(), raw.topics.dlq_retention, MIN, 3650 * DAY),
        ("topics.deliveries_retention".into(), raw.topics.deliveries_retention, MIN, 3650 * DAY),
    ];
    for (i, d) in s.retry_delays.iter().enumerate() {
        checks.push((format!("send.retry_delays[{i}]"), *d, MS, 7 * DAY));
    }
    for (i, a) in raw.apps.iter().enumerate() {
        checks.push((format!("apps[{i}].inactivity_window"), a.inactivity_window, MS, 3650 * DAY));
    }
    for (i, pc) in raw.partners.iter().enumerate() {
        let optional = [
            ("connect_timeout", pc.connect_timeout, MS, 5 * MIN),
            ("timeout", pc.timeout, MS, 15 * MIN),
            ("circuit_open_for", pc.circuit_open_for, MS, DAY),
            ("job_ttl", pc.job_ttl, SEC, 30 * DAY),
        ];
        for (name, d, min, max) in optional {
            if let Some(d) = d {
                checks.push((format!("partners[{i}].{name}"), d, min, max));
            }
        }
    }
    for (i, pc) in raw.postbacks.iter().enumerate() {
        if let Some(w) = pc.window {
            checks.push((format!("postbacks[{i}].window"), w, MIN, 3650 * DAY));
        }
    }
    for (key, d, min, max) in checks {
        if d.0 < min || d.0 > max {
            errors.push((
                key,
                format!("{d} is out of range: must be between {} and {}", HumanDuration(min), HumanDuration(max)),
            ));
        }
    }
}

fn check_input(input: &InputConfig, errors: &mut Errors) {
    if !(1024..=MAX_RECORD_BYTES).contains(&input.max_record_bytes) {
        errors.push((
            "input.max_record_bytes".into(),
            format!(
                "{} is out of range: must be between 1024 and {MAX_RECORD_BYTES} (state records carry up to {STATE_COPIES} copies of an event's attribution and must stay under Kafka's 1 MB record limit)",
                input.max_record_bytes
            ),
        ));
    }
    if input.max_field_bytes < 16 || input.max_field_bytes > input.max_record_bytes {
        errors.push((
            "input.max_field_bytes".into(),
            format!("{} is out of range: must be between 16 and input.max_record_bytes", input.max_field_bytes),
        ));
    }
}

fn compile_mapping(input: &InputConfig, errors: &mut Errors) -> Option<Arc<crate::codec::Mapping>> {
    let raw = input.mapping.as_ref()?;
    match crate::codec::Mapping::compile(raw) {
        Ok(m) => Some(Arc::new(m)),
        Err(found) => {
            errors.extend(found.into_iter().map(|(key, reason)| (format!("input.mapping.{key}"), reason)));
            None
        }
    }
}

/// `ca_file`, `cert_file` and `key_file` of `section` read and parse.
fn check_tls(section: &str, ca: Option<&Path>, cert: Option<&Path>, key: Option<&Path>, errors: &mut Errors) {
    if let Err(e) = super::tls::load(ca, None, None) {
        errors.push((format!("{section}.ca_file"), e));
    }
    if let Err(e) = super::tls::load(None, cert, key) {
        let which = if cert.is_some() { "cert_file" } else { "key_file" };
        errors.push((format!("{section}.{which}"), e));
    }
}

fn check_registry(registry: Option<&SchemaRegistryConfig>, errors: &mut Errors) {
    let Some(r) = registry else { return };
    match url::Url::parse(&r.url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
        Ok(u) => errors.push(("schema_registry.url".into(), format!("'{}' is not an http(s) URL", u))),
        Err(e) => errors.push(("schema_registry.url".into(), format!("'{}' is not a URL: {e}", r.url))),
    }
    if r.password.is_some() && r.username.is_none() {
        errors.push(("schema_registry.password".into(), "a password needs a username".into()));
    }
    check_tls("schema_registry", r.ca_file.as_deref(), r.cert_file.as_deref(), r.key_file.as_deref(), errors);
    if r.timeout.0.is_zero() {
        errors.push(("schema_registry.timeout".into(), "must be more than 0s".into()));
    }
    if !(1..=100_000).contains(&r.max_schemas) {
        errors.push(("schema_registry.max_schemas".into(), format!("{} is out of range: 1 to 100000", r.max_schemas)));
    }
}

fn build_apps(raw: &[AppConfig], errors: &mut Errors) -> Vec<App> {
    let mut seen = HashSet::new();
    let mut apps = Vec::new();
    for (i, a) in raw.iter().enumerate() {
        let key = format!("apps[{i}]");
        if !valid_id(&a.id) {
            errors.push((format!("{key}.id"), format!("app id '{}' {ID_RULE}", a.id)));
        } else if !seen.insert(a.id.as_str()) {
            errors.push((format!("{key}.id"), format!("app id '{}' is used twice", a.id)));
        }
        let project = a.project.clone().unwrap_or_else(|| DEFAULT_PROJECT.to_owned());
        if !valid_id(&project) {
            errors.push((format!("{key}.project"), format!("project '{project}' {ID_RULE}")));
        }
        apps.push(App {
            id: a.id.clone(),
            platform: a.platform.into(),
            inactivity_window_ms: a.inactivity_window.ms(),
            reattribute_to_organic: a.reattribute_to_organic,
            project,
        });
    }
    apps
}

fn check_partners(raw: &[PartnerConfig], errors: &mut Errors) {
    let mut seen = HashSet::new();
    for (i, p) in raw.iter().enumerate() {
        let key = format!("partners[{i}]");
        if !valid_id(&p.id) {
            errors.push((format!("{key}.id"), format!("partner id '{}' {ID_RULE}", p.id)));
        } else if !seen.insert(p.id.as_str()) {
            errors.push((format!("{key}.id"), format!("partner id '{}' is used twice", p.id)));
        }
        if p.max_concurrency == 0 {
            errors.push((format!("{key}.max_concurrency"), "must be at least 1".into()));
        }
        if p.signing_secret.as_ref().is_some_and(|s| s.len() < 16) {
            errors.push((format!("{key}.signing_secret"), "must be at least 16 characters".into()));
        }
        if reqwest::header::HeaderName::from_bytes(p.signature_header.as_bytes()).is_err() {
            errors.push((
                format!("{key}.signature_header"),
                format!("'{}' is not a valid header name", p.signature_header),
            ));
        }
        check_tls(&key, p.ca_file.as_deref(), p.cert_file.as_deref(), p.key_file.as_deref(), errors);
        check_partner_defaults(p, &key, errors);
    }
}

/// The event names a partner maps are events; its base URL is an address
/// without macros; a consent setting comes with a policy that uses it.
fn check_partner_defaults(p: &PartnerConfig, key: &str, errors: &mut Errors) {
    for event in p.event_names.keys() {
        let custom = event.strip_prefix("custom_event:").is_some_and(|n| !n.is_empty());
        if !custom && !EVENT_NAMES.contains(&event.as_str()) {
            errors.push((
                format!("{key}.event_names.{event}"),
                format!("'{event}' is not a postback event: one of {}, or custom_event:NAME", EVENT_NAMES.join(", ")),
            ));
        }
    }
    if let Some(base) = &p.base_url {
        if let Err(e) = Template::parse(base, Place::Url) {
            errors.push((format!("{key}.base_url"), format!("'{base}': {e}")));
        } else if base.contains('{') || base.contains('?') || base.contains('#') {
            errors.push((
                format!("{key}.base_url"),
                format!("'{base}' is scheme, host and path only: no macros, query or fragment"),
            ));
        }
    }
    let policy = p.privacy.policy.unwrap_or(PrivacyPolicyName::Send);
    if policy == PrivacyPolicyName::Send && (p.privacy.purpose.is_some() || p.privacy.require_consent) {
        errors.push((
            format!("{key}.privacy"),
            "a consent purpose or require_consent does nothing without a policy: set policy = \"strip\" or \"suppress\"".into(),
        ));
    }
}

/// The postback events a partner's `event_names` may map.
const EVENT_NAMES: [&str; 13] = [
    "install",
    "reinstall",
    "reengagement",
    "new_user",
    "first_registration",
    "registration",
    "first_login",
    "login",
    "first_payment",
    "payment",
    "first_custom_payment",
    "custom_payment",
    "custom_event",
];

fn parse_networks(raw: &[String], errors: &mut Errors) -> Vec<IpNet> {
    let mut nets = Vec::new();
    for (i, s) in raw.iter().enumerate() {
        match s.parse::<IpNet>() {
            Ok(n) => nets.push(n),
            Err(_) => {
                errors.push((format!("send.allow_networks[{i}]"), format!("'{s}' is not a CIDR such as 10.0.0.0/8")))
            }
        }
    }
    nets
}

fn build_postbacks(
    raw: &FileConfig,
    generated: &[(String, PostbackConfig)],
    apps: &[App],
    rates: &Rates,
    errors: &mut Errors,
) -> Vec<Postback> {
    let mut ids = HashSet::new();
    let mut out = Vec::new();
    let own = raw.postbacks.iter().enumerate().map(|(i, pc)| (format!("postbacks[{i}]"), pc));
    let presets = generated.iter().map(|(key, pc)| (key.clone(), pc));
    for (key, pc) in own.chain(presets) {
        let partner = raw.partners.iter().find(|p| p.id == pc.partner);
        let pc = match super::defaults::apply(pc, partner) {
            Ok(pc) => pc,
            Err((k, reason)) => {
                errors.push((format!("{key}{k}"), reason));
                continue;
            }
        };
        let before = errors.len();
        let pb = build_postback(&pc, &key, (raw, apps, rates), errors);
        if let Some(pb) = pb.filter(|_| errors.len() == before) {
            if !ids.insert(pb.id.clone()) {
                let k = if pc.id.is_some() { format!("{key}.id") } else { format!("{key}.name") };
                errors.push((k, format!("postback id '{}' is used twice (set a distinct `id`)", pb.id)));
            }
            out.push(pb);
        }
    }
    out
}

fn privacy_policy(c: &PrivacyConfig) -> crate::domain::privacy::PrivacyPolicy {
    use crate::domain::privacy::{DEFAULT_PURPOSE, Policy, PrivacyPolicy};
    PrivacyPolicy {
        policy: match c.policy {
            None | Some(PrivacyPolicyName::Send) => Policy::Send,
            Some(PrivacyPolicyName::Strip) => Policy::Strip,
            Some(PrivacyPolicyName::Suppress) => Policy::Suppress,
        },
        purpose: c.purpose.clone().unwrap_or_else(|| DEFAULT_PURPOSE.to_owned()),
        require_consent: c.require_consent,
    }
}

/// "Acme Ads | install" → "acme-ads-install".
pub fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_owned()
}

fn build_postback(
    pc: &PostbackConfig,
    key: &str,
    (raw, apps, rates): (&FileConfig, &[App], &Rates),
    errors: &mut Errors,
) -> Option<Postback> {
    let mut err = |k: &str, r: String| errors.push((format!("{key}{k}"), r));
    let id = pc.id.clone().unwrap_or_else(|| slug(&pc.name));
    if !valid_id(&id) {
        let k = if pc.id.is_some() { ".id" } else { ".name" };
        err(k, format!("postback id '{id}' {ID_RULE}"));
    }
    let partner = raw.partners.iter().find(|p| p.id == pc.partner);
    if partner.is_none() {
        err(".partner", format!("unknown partner '{}': not in [[partners]]", pc.partner));
    }
    let event = parse_event(pc, &mut err)?;
    if event.has_fixed_routing() && pc.attribution.is_some() {
        err(".attribution", format!("event '{}' has fixed routing and takes no `attribution`", event.name()));
    }
    if pc.verified_only && !event.is_payment() {
        err(".verified_only", format!("only payment events take `verified_only`, not '{}'", event.name()));
    }
    let sending = match pc.sending {
        SendingName::Attributed => Sending::Attributed,
        SendingName::All => Sending::All,
    };
    if pc.share_other_attribution && sending != Sending::All {
        err(
            ".share_other_attribution",
            "only a postback with sending = \"all\" sees other partners' attributions".into(),
        );
    }
    if !pc.campaigns.is_empty() && sending != Sending::Attributed {
        err(".campaigns", "a campaign-only postback must use sending = \"attributed\"".into());
    }
    let app_ids = resolve_apps(pc, &event, apps, &mut err);
    let ttl = partner.and_then(|p| p.job_ttl).unwrap_or(raw.process.job_ttl);
    let (url, headers, body) = parse_templates(pc, &mut err)?;
    let when = conditions::when(pc, &event, rates, &mut err);
    let occurrence = conditions::occurrence(pc, &event, &mut err);
    let templates: Vec<&Template> = [&url].into_iter().chain(headers.iter().map(|(_, t)| t)).chain(&body).collect();
    conditions::check_macros(&templates, rates, &mut err);
    Some(Postback {
        id,
        name: pc.name.clone(),
        partner_id: pc.partner.clone(),
        routing: match pc.attribution {
            Some(RoutingName::Ca) => Routing::Ca,
            _ => Routing::Lt,
        },
        event,
        sending,
        apps: app_ids,
        campaigns: pc.campaigns.clone(),
        verified_only: pc.verified_only,
        window_ms: pc.window.map(|w| w.ms()),
        share_other_attribution: pc.share_other_attribution,
        when,
        occurrence,
        method: pc.method,
        url,
        headers,
        body,
        ttl_ms: ttl.ms(),
    })
}

fn parse_event(pc: &PostbackConfig, err: &mut impl FnMut(&str, String)) -> Option<PostbackEvent> {
    let scope = match pc.by {
        Some(ByName::User) => Scope::User,
        _ => Scope::Device,
    };
    let event = match pc.event.as_str() {
        "install" => PostbackEvent::Install,
        "reinstall" => PostbackEvent::Reinstall,
        "reengagement" => PostbackEvent::Reengagement(scope),
        "new_user" => PostbackEvent::NewUser,
        "first_registration" => PostbackEvent::FirstRegistration,
        "registration" => PostbackEvent::Registration,
        "first_login" => PostbackEvent::FirstLogin,
        "login" => PostbackEvent::Login,
        "first_payment" => PostbackEvent::FirstPayment(scope),
        "payment" => PostbackEvent::Payment,
        "first_custom_payment" => PostbackEvent::FirstCustomPayment(scope),
        "custom_payment" => PostbackEvent::CustomPayment,
        "custom_event" => match &pc.custom_event {
            Some(name) if !name.is_empty() => PostbackEvent::CustomEvent(name.clone()),
            _ => {
                err(".custom_event", "event 'custom_event' needs the app's event name in `custom_event`".into());
                return None;
            }
        },
        other => {
            err(
                ".event",
                format!(
                    "unknown event '{other}' (one of: install, reinstall, reengagement, new_user, first_registration, registration, first_login, login, first_payment, payment, first_custom_payment, custom_payment, custom_event)"
                ),
            );
            return None;
        }
    };
    if pc.by.is_some()
        && !matches!(
            event,
            PostbackEvent::Reengagement(_) | PostbackEvent::FirstPayment(_) | PostbackEvent::FirstCustomPayment(_)
        )
    {
        err(
            ".by",
            format!("event '{}' takes no `by` (only reengagement, first_payment, first_custom_payment)", event.name()),
        );
    }
    if pc.custom_event.is_some() && !matches!(event, PostbackEvent::CustomEvent(_)) {
        err(".custom_event", format!("only event 'custom_event' takes `custom_event`, not '{}'", event.name()));
    }
    Some(event)
}

/// An explicit list must name configured apps where the event is valid; the
/// default is every app where it is.
fn resolve_apps(
    pc: &PostbackConfig,
    event: &PostbackEvent,
    apps: &[App],
    err: &mut impl FnMut(&str, String),
) -> Vec<String> {
    match &pc.apps {
        Some(list) => {
            if list.is_empty() {
                err(".apps", "an empty list sends nothing; leave `apps` out for every app".into());
            }
            for (j, id) in list.iter().enumerate() {
                match apps.iter().find(|a| a.id == *id) {
                    None => err(&format!(".apps[{j}]"), format!("unknown app '{id}': not in [[apps]]")),
                    Some(a) if !event.valid_for(a.platform) => err(
                        &format!(".apps[{j}]"),
                        format!(
                            "app '{id}' is a web app: only new_user, reengagement, registration, login, custom payment and custom event postbacks are valid there, not '{}'",
                            event.name()
                        ),
                    ),
                    Some(_) => {}
                }
            }
            list.clone()
        }
        None => {
            let valid: Vec<String> =
                apps.iter().filter(|a| event.valid_for(a.platform)).map(|a| a.id.clone()).collect();
            if valid.is_empty() && !apps.is_empty() {
                err(
                    ".event",
                    format!(
                        "no configured app can send '{}' (web apps only take new_user, reengagement, registration, login, custom payment and custom event postbacks)",
                        event.name()
                    ),
                );
            }
            valid
        }
    }
}

type Templates = (Template, Vec<(String, Template)>, Option<Template>);

fn parse_template(src: &str, place: Place, key: &str, err: &mut impl FnMut(&str, String)) -> Option<Template> {
    Template::parse(src, place).map_err(|e| err(key, format!("template \"{src}\": {e}"))).ok()
}

fn parse_templates(pc: &PostbackConfig, err: &mut impl FnMut(&str, String)) -> Option<Templates> {
    let url = parse_template(&pc.url, Place::Url, ".url", err);
    let mut headers = Vec::new();
    let mut headers_ok = true;
    for (name, value) in &pc.headers {
        let key = format!(".headers.{name}");
        if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
            err(&key, format!("'{name}' is not a valid header name"));
            headers_ok = false;
        } else if let Some(t) = parse_template(value, Place::Header, &key, err) {
            headers.push((name.clone(), t));
        } else {
            headers_ok = false;
        }
    }
    let place = match pc.body_format {
        BodyFormat::Json => Place::JsonBody,
        BodyFormat::Form => Place::FormBody,
    };
    let body = match &pc.body {
        None => None,
        Some(_) if pc.method == crate::domain::Method::Get => {
            err(".body", "a GET postback has no body; use method = \"POST\" or \"PUT\"".into());
            return None;
        }
        Some(b) => Some(parse_template(b, place, ".body", err)?),
    };
    if !headers_ok {
        return None;
    }
    if body.is_some() && !pc.headers.keys().any(|k| k.eq_ignore_ascii_case("content-type")) {
        let content_type = match pc.body_format {
            BodyFormat::Json => "application/json",
            BodyFormat::Form => "application/x-www-form-urlencoded",
        };
        headers.push((
            "Content-Type".to_owned(),
            Template::parse(content_type, Place::Header).expect("a literal header parses"),
        ));
    }
    Some((url?, headers, body))
}
