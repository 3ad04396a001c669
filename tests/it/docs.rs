//! The documents agree with the runbook: a procedure is written once, in
//! docs/operations/runbook.md, and other documents link to it; none of
//! them may say what the runbook says is wrong. (No broker needed.)

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
