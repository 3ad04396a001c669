//! The documents agree with the runbook: a procedure is written once, in
//! docs/operations/runbook.md, and other documents link to it; none of
//! them may say what the runbook says is wrong. (No broker needed.)

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Phrases that contradict the runbook, and why.
const CONTRADICTIONS: &[(&str, &str)] = &[
    ("state reset", "adding input partitions needs nothing else; there is no state reset"),
    ("needs a state reset", "adding input partitions needs nothing else"),
    ("per sender instance", "partner limits hold for the whole sender group"),
    ("POSTBACK__PARTNERS__0", "array entries are addressed by id, never by position"),
    ("numeric segment", "array entries are addressed by id, never by position"),
    ("keep the old assignor", "partition.assignment.strategy is refused in [kafka.consumer]"),
    ("Java 21", "the test registry runs on Java 17"),
];

fn markdown(root: &Path) -> Vec<PathBuf> {
    let mut out = vec![root.join("README.md"), root.join("deploy/README.md")];
    let mut dirs = vec![root.join("docs")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).expect("docs directory").flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "md") {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn no_document_contradicts_the_runbook() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let runbook = root.join("docs/operations/runbook.md");
    let mut found = Vec::new();
    for path in markdown(root).into_iter().filter(|p| *p != runbook) {
        let text = std::fs::read_to_string(&path).unwrap();
        for (phrase, why) in CONTRADICTIONS {
            if text.contains(phrase) {
                found.push(format!("{}: \"{phrase}\" — {why}", path.strip_prefix(root).unwrap().display()));
            }
        }
        // a procedure the runbook has is linked, not written again
        if text.contains("kafka-topics --alter") || text.contains("state rescale postback.toml --partitions") {
            found.push(format!("{}: writes out a runbook procedure instead of linking it", path.display()));
        }
    }
    assert!(found.is_empty(), "documents disagree with the runbook:\n{}", found.join("\n"));
}

#[test]
fn the_deployment_guide_and_the_readme_link_the_runbook() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for doc in ["README.md", "deploy/README.md"] {
        let text = std::fs::read_to_string(root.join(doc)).unwrap();
        assert!(text.contains("docs/operations/runbook.md"), "{doc} links the runbook");
    }
}

/// Every macro and every MyTracker name the code reads has its row in
/// docs/templates.md, and every preset its row in the partners page.
#[test]
fn the_template_and_partner_references_list_what_the_code_has() {
    use postback::domain::template::{CATALOGUE, mytracker};
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let templates = std::fs::read_to_string(root.join("docs/templates.md")).unwrap();
    let mut missing = Vec::new();
    for (name, _) in CATALOGUE {
        // "sub1 .. sub5" is one row of five
        let first = name.split(' ').next().unwrap();
        if !templates.contains(&format!("`{first}`")) {
            missing.push(format!("docs/templates.md: macro {name}"));
        }
    }
    for (mt, ours) in mytracker::NAMES {
        if !templates.contains(&format!("| `{{{mt}}}` | `{{{ours}}}` |")) {
            missing.push(format!("docs/templates.md: MyTracker {mt} -> {ours}"));
        }
    }
    for (prefix, family) in mytracker::PREFIXES {
        if !templates.contains(&format!("| `{{{prefix}NAME}}` | `{{{family}NAME}}` |")) {
            missing.push(format!("docs/templates.md: MyTracker prefix {prefix}"));
        }
    }
    let partners = std::fs::read_to_string(root.join("docs/configuration/partners.md")).unwrap();
    for preset in postback::config::presets::all() {
        if !partners.contains(&format!("| `{}` |", preset.preset.id)) {
            missing.push(format!("docs/configuration/partners.md: preset {}", preset.preset.id));
        }
    }
    assert!(missing.is_empty(), "not documented:\n{}", missing.join("\n"));
}

/// The keys the config's parser takes in one table: it refuses an unknown
/// key naming every key it knows ("expected one of `a`, `b`").
fn parser_keys(text: &str) -> BTreeSet<String> {
    let err = postback::config::load_str(text, Path::new("pb.toml"), Vec::<(String, String)>::new())
        .map(|_| panic!("a config with an unknown key loaded: {text}"))
        .unwrap_err()
        .to_string();
    let list =
        err.split("expected one of").nth(1).or_else(|| err.split("expected").nth(1)).unwrap_or_else(|| panic!("{err}"));
    list.split('`').skip(1).step_by(2).map(str::to_owned).collect()
}

/// The keys of one `## `[table]`` (or `### `) section's first column.
fn documented_keys(doc: &str, heading: &str) -> BTreeSet<String> {
    let start = doc.find(heading).unwrap_or_else(|| panic!("reference.md has no section {heading}"));
    let body = &doc[start + heading.len()..];
    let end = body.find("\n## ").into_iter().chain(body.find("\n### ")).min().unwrap_or(body.len());
    let mut keys = BTreeSet::new();
    for line in body[..end].lines().filter(|l| l.starts_with("| `")) {
        let first = line.split(" | ").next().unwrap_or_default();
        keys.extend(first.split('`').skip(1).step_by(2).map(|k| k.trim_end_matches(".*").to_owned()));
    }
    keys
}

/// Every key the parser takes has its row in the configuration reference,
/// and every row is a key the parser takes.
#[test]
fn the_configuration_reference_lists_exactly_the_keys_of_the_parser() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("docs/configuration/reference.md")).unwrap();
    let app = "[[apps]]\nid = \"a\"\nplatform = \"mobile\"\n";
    let tables = [
        ("## `[kafka]`", format!("{app}[kafka]\nzzz = 1\n")),
        ("## `[topics]`", format!("{app}[topics]\nzzz = 1\n")),
        ("## `[input]`", format!("{app}[input]\nzzz = 1\n")),
        ("## `[schema_registry]`", format!("{app}[schema_registry]\nzzz = 1\n")),
        ("## `[process]`", format!("{app}[process]\nzzz = 1\n")),
        ("## `[send]`", format!("{app}[send]\nzzz = 1\n")),
        ("## `[admin]`", format!("{app}[admin]\nzzz = 1\n")),
        ("## `[[apps]]`", "[[apps]]\nzzz = 1\n".to_owned()),
        ("## `[[partners]]`", format!("{app}[[partners]]\nzzz = 1\n")),
        ("### `[partners.privacy]`", format!("{app}[[partners]]\nid = \"p\"\n[partners.privacy]\nzzz = 1\n")),
        ("## `[[postbacks]]`", format!("{app}[[postbacks]]\nzzz = 1\n")),
        ("### `[postbacks.when]`", format!("{app}[[postbacks]]\nname = \"x\"\n[postbacks.when]\nzzz = 1\n")),
    ];
    let mut wrong = Vec::new();
    for (heading, text) in tables {
        let parsed = parser_keys(&text);
        let documented = documented_keys(&doc, heading);
        for k in parsed.difference(&documented) {
            wrong.push(format!("{heading}: `{k}` is a key without a row"));
        }
        for k in documented.difference(&parsed) {
            wrong.push(format!("{heading}: `{k}` has a row but is no key"));
        }
    }
    assert!(wrong.is_empty(), "docs/configuration/reference.md and the parser differ:\n{}", wrong.join("\n"));
}

/// docs/operations/metrics.md is the registry's own reference, as
/// generated; `POSTBACK_UPDATE_DOCS=1` rewrites it after a metric changed.
#[test]
fn the_metrics_reference_is_generated_from_the_registry() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/operations/metrics.md");
    let want = postback::telemetry::metrics::reference();
    if std::env::var_os("POSTBACK_UPDATE_DOCS").is_some() {
        std::fs::write(&path, &want).unwrap();
    }
    let got = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        got == want,
        "docs/operations/metrics.md is not the registry's reference: run POSTBACK_UPDATE_DOCS=1 make unit"
    );
}

/// Every readiness reason has its row in the observability page.
#[test]
fn every_readiness_reason_is_documented() {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/operations/observability.md"))
        .unwrap();
    let missing: Vec<String> = postback::telemetry::Reason::EXAMPLES
        .iter()
        .map(ToString::to_string)
        .filter(|r| !doc.contains(&format!("| `{r}")))
        .collect();
    assert!(missing.is_empty(), "readiness reasons without a row: {missing:?}");
}
