//! Environment overrides: `POSTBACK__KAFKA__BOOTSTRAP_SERVERS=...` sets
//! `kafka.bootstrap_servers`. A numeric segment indexes an array
//! (`POSTBACK__PARTNERS__0__RATE_LIMIT`). Values are read as TOML when they
//! parse as a TOML value (numbers, booleans, arrays), else as strings.

use std::collections::BTreeMap;
use toml::Value;

pub const PREFIX: &str = "POSTBACK__";

/// An override that could not be applied: (variable, reason).
pub type OverrideError = (String, String);

/// Applies every `POSTBACK__*` variable of `vars` to `root`. Returns the key
/// path each variable set, to name it in later errors.
pub fn apply_overrides(
    root: &mut Value,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<BTreeMap<String, String>, Vec<OverrideError>> {
    let mut set = BTreeMap::new();
    let mut errors = Vec::new();
    let mut vars: Vec<_> = vars.into_iter().filter(|(k, _)| k.starts_with(PREFIX)).collect();
    vars.sort();
    for (var, raw) in vars {
        let path: Vec<String> = var[PREFIX.len()..].split("__").map(|s| s.to_ascii_lowercase()).collect();
        if path.iter().any(String::is_empty) {
            errors.push((var, "empty key segment (use single words between '__')".into()));
            continue;
        }
        match set_path(root, &path, parse_value(&raw)) {
            Ok(()) => {
                set.insert(display_path(&path), var);
            }
            Err(reason) => errors.push((var, reason)),
        }
    }
    if errors.is_empty() { Ok(set) } else { Err(errors) }
}

fn parse_value(raw: &str) -> Value {
    format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| Value::String(raw.to_owned()))
}

/// `partners.0.rate_limit` → `partners[0].rate_limit`, the style of every
/// other config error.
pub fn display_path(path: &[String]) -> String {
    let mut out = String::new();
    for seg in path {
        if seg.parse::<usize>().is_ok() {
            out.push_str(&format!("[{seg}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(seg);
        }
    }
    out
}

fn set_path(node: &mut Value, path: &[String], value: Value) -> Result<(), String> {
    let (head, rest) = path.split_first().expect("non-empty path");
    match node {
        Value::Table(table) => {
            if rest.is_empty() {
                table.insert(head.clone(), value);
                return Ok(());
            }
            let child = table.entry(head.clone()).or_insert_with(|| {
                if rest[0].parse::<usize>().is_ok() {
                    Value::Array(Vec::new())
                } else {
                    Value::Table(Default::default())
                }
            });
            set_path(child, rest, value)
        }
        Value::Array(items) => {
            let i: usize = head.parse().map_err(|_| format!("'{head}' must be an array index here"))?;
            let Some(child) = items.get_mut(i) else {
                return Err(format!("index {i} is past the end of the array ({} items in the file)", items.len()));
            };
            if rest.is_empty() {
                *child = value;
                Ok(())
            } else {
                set_path(child, rest, value)
            }
        }
        _ => Err(format!("'{head}' is below a value that is not a table")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(toml_text: &str, vars: &[(&str, &str)]) -> Result<Value, Vec<OverrideError>> {
        let mut v: Value = toml::from_str(toml_text).unwrap();
        apply_overrides(&mut v, vars.iter().map(|(k, v)| (k.to_string(), v.to_string())))?;
        Ok(v)
    }

    #[test]
    fn sets_nested_keys_with_typed_values() {
        let v = apply(
            "[kafka]\nbootstrap_servers = 'a:1'\n[[partners]]\nid = 'x'",
            &[
                ("POSTBACK__KAFKA__BOOTSTRAP_SERVERS", "b:2"),
                ("POSTBACK__PROCESS__MAX_BATCH", "10"),
                ("POSTBACK__PARTNERS__0__RATE_LIMIT", "5/s"),
                ("POSTBACK__SEND__RETRY_DELAYS", "[\"1s\", \"2s\"]"),
                ("OTHER", "ignored"),
            ],
        )
        .unwrap();
        assert_eq!(v["kafka"]["bootstrap_servers"].as_str(), Some("b:2"));
        assert_eq!(v["process"]["max_batch"].as_integer(), Some(10));
        assert_eq!(v["partners"][0]["rate_limit"].as_str(), Some("5/s"));
        assert_eq!(v["send"]["retry_delays"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn bad_paths_are_named() {
        let err = apply("[[partners]]\nid = 'x'", &[("POSTBACK__PARTNERS__3__ID", "y")]).unwrap_err();
        assert_eq!(
            err,
            vec![(
                "POSTBACK__PARTNERS__3__ID".to_string(),
                "index 3 is past the end of the array (1 items in the file)".to_string()
            )]
        );
    }

    #[test]
    fn display_paths_use_brackets() {
        assert_eq!(display_path(&["partners".into(), "0".into(), "rate_limit".into()]), "partners[0].rate_limit");
    }
}
