//! The postback table printed by `postback check-config`.

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
    }
}
