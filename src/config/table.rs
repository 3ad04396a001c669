//! The postback table printed by `postback check-config`.

use super::Config;
use crate::domain::Postback;

const HEADERS: [&str; 9] = ["name", "partner", "event", "attribution", "sending", "apps", "campaigns", "method", "url"];

fn row(pb: &Postback) -> [String; 9] {
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
        pb.method.as_str().to_owned(),
        pb.url.source().to_owned(),
    ]
}

/// Renders the postback table with aligned columns.
pub fn postback_table(config: &Config) -> String {
    let rows: Vec<[String; 9]> = config.rules.postbacks().iter().map(row).collect();
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
