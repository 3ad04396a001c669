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

/// The sibling modules of each folder (`name` -> its source file).
fn siblings(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_owned();
        if path.is_dir() && path.join("mod.rs").is_file() {
            out.push((name, path.join("mod.rs")));
        } else if path.extension().is_some_and(|e| e == "rs")
            && !["mod", "lib", "main"].contains(&name.as_str())
            && !dir.join(&name).join("mod.rs").is_file()
        {
            out.push((name, path));
        }
    }
    out.sort();
    out
}

/// The siblings a module's file names: `super::x` from a file beside it,
/// `crate::<path>::x` from anywhere in it. Its tests are left out (a test
/// module's `super::` is the module itself).
fn sibling_uses(file: &Path, module_path: &str, names: &[String]) -> BTreeSet<String> {
    let text = std::fs::read_to_string(file).expect("read source");
    let code = code_of(&text);
    let is_mod_rs = file.file_name().is_some_and(|n| n == "mod.rs");
    let mut prefixes = vec![format!("crate::{module_path}::")];
    if !is_mod_rs {
        prefixes.push("super::".to_owned());
    }
    let mut found = BTreeSet::new();
    for prefix in &prefixes {
        for (i, _) in code.match_indices(prefix.as_str()) {
            let rest = &code[i + prefix.len()..];
            // `use super::{a, b}` names several, `super::a::X` one
            let group = match rest.strip_prefix('{') {
                Some(inner) => &inner[..inner.find('}').unwrap_or(inner.len())],
                None => &rest[..rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len())],
            };
            for item in group.split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                    .collect();
                if names.contains(&name) {
                    found.insert(name);
                }
            }
        }
    }
    found
}

/// A module's own folder uses what it likes of itself; but no two sibling
/// files may need each other, directly or round a loop: each folder's
/// modules form a layering that can be read bottom up.
#[test]
fn no_module_depends_on_a_sibling_that_depends_back_on_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut dirs = vec![src.clone()];
    let mut cycles = Vec::new();
    while let Some(dir) = dirs.pop() {
        let mods = siblings(&dir);
        let names: Vec<String> = mods.iter().map(|(n, _)| n.clone()).collect();
        let rel = dir.strip_prefix(&src).unwrap().to_string_lossy().replace('/', "::");
        for (_, file) in &mods {
            if file.ends_with("mod.rs") {
                dirs.push(file.parent().unwrap().to_owned());
            }
        }
        // the top level's order is the module map's (the test above)
        if rel.is_empty() {
            continue;
        }
        let mut edges: std::collections::BTreeMap<String, BTreeSet<String>> = Default::default();
        for (name, file) in &mods {
            let mut files = vec![file.clone()];
            if file.ends_with("mod.rs") {
                // a folder module: every file in it may name its siblings through crate::
                sources(file.parent().unwrap(), &mut files);
            }
            let mut uses = BTreeSet::new();
            for f in &files {
                // files below a folder module see the folder's siblings only through crate:: paths
                let own = f.parent() == Some(dir.as_path()) || f == file;
                let found = if own { sibling_uses(f, &rel, &names) } else { crate_uses(f, &rel, &names) };
                uses.extend(found);
            }
            uses.remove(name);
            edges.insert(name.clone(), uses);
        }
        for (a, uses) in &edges {
            for b in uses {
                if reaches(&edges, b, a) {
                    cycles.push(format!("{rel}: {a} -> {b} -> … -> {a}"));
                }
            }
        }
    }
    cycles.sort();
    cycles.dedup();
    assert!(cycles.is_empty(), "import cycles between sibling modules:\n{}", cycles.join("\n"));
}

fn crate_uses(file: &Path, module_path: &str, names: &[String]) -> BTreeSet<String> {
    let text = std::fs::read_to_string(file).expect("read source");
    let code = code_of(&text);
    let prefix = format!("crate::{module_path}::");
    let mut found = BTreeSet::new();
    for (i, _) in code.match_indices(prefix.as_str()) {
        let name: String =
            code[i + prefix.len()..].chars().take_while(|c| c.is_ascii_lowercase() || *c == '_').collect();
        if names.contains(&name) {
            found.insert(name);
        }
    }
    found
}

fn reaches(edges: &std::collections::BTreeMap<String, BTreeSet<String>>, from: &str, to: &str) -> bool {
    let mut seen = BTreeSet::new();
    let mut stack = vec![from.to_owned()];
    while let Some(n) = stack.pop() {
        if n == to {
            return true;
        }
        if seen.insert(n.clone()) {
            stack.extend(edges.get(&n).into_iter().flatten().cloned());
        }
    }
    false
}

/// The code of a file without its tests and comments: a doc link to a
/// sibling (`[`super::x`]`) is not a use of it.
fn code_of(text: &str) -> String {
    let before_tests = text.split("#[cfg(test)]").next().unwrap_or_default();
    before_tests.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n")
}
