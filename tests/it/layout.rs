//! The module map of `src/lib.rs` is a contract: each top module uses only
//! the modules declared before it (the pure `domain` first, `cli` last), so
//! the folders never loop. This reads the sources and checks it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top modules `crate::` paths in `files` name.
fn uses(files: &[PathBuf]) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for f in files {
        let text = std::fs::read_to_string(f).expect("read source");
        for (i, _) in text.match_indices("crate::") {
            let name: String = text[i + 7..].chars().take_while(|c| c.is_ascii_lowercase() || *c == '_').collect();
            found.insert(name);
        }
    }
    found
}

#[test]
fn each_module_uses_only_the_modules_declared_before_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).expect("lib.rs");
    let order: Vec<String> = lib
        .lines()
        .filter_map(|l| l.strip_prefix("//! - [`"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_owned)
        .collect();
    let declared: BTreeSet<String> =
        lib.lines().filter_map(|l| l.strip_prefix("pub mod ")).map(|l| l.trim_end_matches(';').to_owned()).collect();
    assert_eq!(order.iter().cloned().collect::<BTreeSet<_>>(), declared, "the module map names every module");
    let mut violations = Vec::new();
    for (i, module) in order.iter().enumerate() {
        let mut files = Vec::new();
        let dir = src.join(module);
        if dir.is_dir() {
            sources(&dir, &mut files);
        }
        let file = src.join(format!("{module}.rs"));
        if file.is_file() {
            files.push(file);
        }
        for used in uses(&files) {
            if used != *module && !order[..i].contains(&used) {
                violations.push(format!("{module} uses {used}, which comes after it"));
            }
        }
    }
    assert!(violations.is_empty(), "{violations:#?}");
}
