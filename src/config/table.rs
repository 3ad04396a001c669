//! What `postback check-config` prints: how input records are read, and
//! the postback table.

use super::Config;
use crate::domain::Postback;

const HEADERS: [&str; 10] =
    ["name", "partner", "event", "attribution", "sending", "apps", "campaigns", "conditions", "method", "url"];

/// The postback's window, occurrence and `when` filters, in short.
fn conditions(pb: &Postback) -> String {
    let mut parts = Vec::new();
    if let Some(ms) = pb.window_ms {
        parts.push(format!("within {}", crate::domain::time::human_ms(ms)));
    }
    if let Some(n) = pb.occurrence {
        parts.push(format!("occurrence {n}"));
    }
    let w = &pb.when;
    for (name, list) in [("country", &w.country), ("os", &w.os), ("campaign", &w.campaigns)] {
        if !list.is_empty() {
            parts.push(format!("{name} {}", list.join("|")));
        }
    }
    if let Some(m) = &w.revenue_min {
        parts.push(format!("revenue >= {} {}", m.amount, m.currency));
    }
    if let Some(m) = &w.revenue_max {
        parts.push(format!("revenue <= {} {}", m.amount, m.currency));
    }
    for (k, v) in &w.event_params {
        parts.push(format!("{k}={v}"));
    }
    if parts.is_empty() { "-".to_owned() } else { parts.join("; ") }
}

fn row(pb: &Postback) -> [String; 10] {
    let attribution = if pb.event.has_fixed_routing() {
        format!("{} (fixed)", pb.event.routing(pb.routing).as_str())
    } else {
        pb.routing.as_str().to_owned()
    };
    let event = if pb.verified_only { format!("{} (verified only)", pb.event) } else { pb.event.to_string() };
    [
        pb.name.clone(),
        pb.partner_id.clone(),
        event,
        attribution,
        pb.sending.as_str().to_owned(),
        pb.apps.join(","),
        if pb.campaigns.is_empty() { "all".to_owned() } else { pb.campaigns.join(",") },
        conditions(pb),
        pb.method.as_str().to_owned(),
        pb.url.source().to_owned(),
    ]
}

/// How input records will be read: format, partitioning and limits, the
/// field mapping and the schema registry — what a data platform team wires
/// in, confirmed before the first record. Registry credentials are never
/// printed.
pub fn input_summary(config: &Config) -> String {
    let input = &config.input;
    let format = match input.format {
        crate::codec::InputFormat::Auto => "auto (JSON or a bare Avro datum)",
        crate::codec::InputFormat::Json => "json",
        crate::codec::InputFormat::Avro => "avro",
    };
    let partitioned = match input.partitioned_by {
        super::model::Partitioning::DeviceId => "device_id",
        super::model::Partitioning::Custom => "custom",
    };
    let mut out = format!(
        "input: format {format}; partitioned by {partitioned}; records up to {} bytes, fields up to {} bytes\n",
        input.max_record_bytes, input.max_field_bytes
    );
    out.push_str(&match &input.mapping {
        Some(m) => format!(
            "mapping: {} of our fields read from other places ([input.mapping]), the rest where our schema has them\n",
            m.mapped()
        ),
        None => "mapping: none (events are of schemas/event.avsc or its JSON form)\n".to_owned(),
    });
    out.push_str(&match &config.schema_registry {
        Some(r) => format!(
            "schema registry: {}{}{}; timeout {}; up to {} schemas cached\n",
            without_userinfo(&r.url),
            if r.username.is_some() { "; basic auth" } else { "" },
            r.ca_file.as_ref().map_or(String::new(), |f| format!("; CA file {}", f.display())),
            crate::domain::time::human_ms(r.timeout.0.as_millis() as i64),
            r.max_schemas
        ),
        None => "schema registry: none (Confluent-framed records must be written with schemas/event.avsc)\n".to_owned(),
    });
    out
}

/// `url` with any `user:password@` removed. (`send::redact` strips more,
/// and `config` comes before `send` in the module order.)
fn without_userinfo(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if !u.username().is_empty() || u.password().is_some() => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

/// Renders the postback table with aligned columns.
pub fn postback_table(config: &Config) -> String {
    let rows: Vec<[String; 10]> = config.rules.postbacks().iter().map(row).collect();
    let mut widths = HEADERS.map(|h| h.chars().count());
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[&str]| {
        let last = cells.len() - 1;
        for (i, cell) in cells.iter().enumerate() {
            out.push_str(cell);
            if i < last {
                out.push_str(&" ".repeat(widths[i] - cell.chars().count() + 2));
            }
        }
        out.push('\n');
    };
    line(&HEADERS);
    for r in &rows {
        line(&r.iter().map(String::as_str).collect::<Vec<_>>());
    }
    out
}

/// The MyTracker macros the config's templates use and what each became
/// here; empty when there are none.
pub fn mytracker_summary(config: &Config) -> String {
    let mut mapped: Vec<(String, String)> = Vec::new();
    for pb in config.rules.postbacks() {
        let templates = std::iter::once(&pb.url).chain(pb.headers.iter().map(|(_, t)| t)).chain(&pb.body);
        for (mt, ours) in templates.flat_map(|t| t.aliases()) {
            if !mapped.iter().any(|(m, _)| m == mt) {
                mapped.push((mt.clone(), ours.clone()));
            }
        }
    }
    if mapped.is_empty() {
        return String::new();
    }
    mapped.sort();
    let list: Vec<String> = mapped.iter().map(|(mt, ours)| format!("{{{mt}}} -> {{{ours}}}")).collect();
    format!("MyTracker macros read as ours: {}\n", list.join(", "))
}

/// Partners by preset, and their privacy policies, when any is set.
pub fn partner_summary(config: &Config) -> String {
    let mut out = String::new();
    for p in &config.partners {
        let mut parts = Vec::new();
        if let Some(preset) = &p.preset {
            parts.push(format!("preset {preset} ({} postbacks enabled)", p.events.len()));
        }
        if let Some(policy) = p.privacy.policy {
            let policy = format!("{policy:?}").to_ascii_lowercase();
            let purpose = p.privacy.purpose.as_deref().unwrap_or(crate::domain::privacy::DEFAULT_PURPOSE);
            let opt_in = if p.privacy.require_consent { ", consent required" } else { "" };
            parts.push(format!("privacy {policy} (purpose {purpose}{opt_in})"));
        }
        if !parts.is_empty() {
            out.push_str(&format!("partner {}: {}\n", p.id, parts.join("; ")));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_are_summed_up_in_one_column() {
        let text = r#"
[[apps]]
id = "game"
platform = "mobile"
[[partners]]
id = "acme"
[[postbacks]]
name = "acme | big payment"
partner = "acme"
event = "payment"
attribution = "ca"
window = "7d"
occurrence = 2
url = "https://pb.acme.example/p"
[postbacks.when]
country = ["US", "CA"]
revenue_min = "10.00 USD"
"#;
        let config =
            crate::config::load_str(text, std::path::Path::new("t.toml"), Vec::<(String, String)>::new()).unwrap();
        assert_eq!(
            conditions(&config.rules.postbacks()[0]),
            "within 7d; occurrence 2; country US|CA; revenue >= 10 USD"
        );
        assert!(postback_table(&config).lines().next().unwrap().contains("campaigns  conditions"));
        assert_eq!(
            input_summary(&config),
            "input: format auto (JSON or a bare Avro datum); partitioned by device_id; records up to 65536 bytes, fields up to 8192 bytes\n\
             mapping: none (events are of schemas/event.avsc or its JSON form)\n\
             schema registry: none (Confluent-framed records must be written with schemas/event.avsc)\n"
        );
    }

    #[test]
    fn the_input_summary_names_the_mapping_and_registry_without_credentials() {
        let text = r#"
[input]
format = "avro"
partitioned_by = "custom"
max_record_bytes = 100000
[input.mapping]
event_id = "/id"
app_id = "/app"
device_id = "/device/id"
kind = "/type"
timestamp_ms = "/ts"
[input.mapping.device]
idfa = "/device/ids/idfa"
[schema_registry]
url = "https://reader:s3cret@registry.example:8081/apis/ccompat/v7"
username = "reader"
password = "s3cret"
timeout = "3s"
[[apps]]
id = "game"
platform = "mobile"
"#;
        let config =
            crate::config::load_str(text, std::path::Path::new("t.toml"), Vec::<(String, String)>::new()).unwrap();
        let summary = input_summary(&config);
        assert_eq!(
            summary,
            "input: format avro; partitioned by custom; records up to 100000 bytes, fields up to 8192 bytes\n\
             mapping: 6 of our fields read from other places ([input.mapping]), the rest where our schema has them\n\
             schema registry: https://registry.example:8081/apis/ccompat/v7; basic auth; timeout 3s; up to 1000 schemas cached\n"
        );
        assert!(!summary.contains("s3cret"));
    }
}
