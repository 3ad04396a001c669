//! Environment overrides: `POSTBACK__KAFKA__BOOTSTRAP_SERVERS=...` sets
//! `kafka.bootstrap_servers`. An entry of an array of tables is addressed
//! by its id, never by its position: `POSTBACK__PARTNERS__ACME__SIGNING_SECRET`
//! sets the `signing_secret` of the partner whose id is `acme` (compared
//! ignoring case, with every character that is not a letter or digit read
//! as `_`; a postback without an id by the slug of its name). Reordering
//! `[[partners]]` therefore cannot move one company's secret into another
//! company's URLs.
//!
//! A value is set as a string, and read as the type of the key it sets
//! ([`retype`]): `POSTBACK__PROCESS__MAX_BATCH=10` is a number because
//! `max_batch` is one, while a numeric secret stays a string.

use std::collections::BTreeMap;
use toml::Value;

pub const PREFIX: &str = "POSTBACK__";

/// An override that could not be applied: (variable, reason).
pub type OverrideError = (String, String);

/// One variable that set a key.
#[derive(Debug, Clone)]
pub struct Override {
    pub var: String,
    pub raw: String,
    /// The key's path, array entries by position.
    pub path: Vec<String>,
}

/// What the variables set, by key path ([`display_path`]).
#[derive(Debug, Clone, Default)]
pub struct Overrides(pub BTreeMap<String, Override>);

/// Applies every `POSTBACK__*` variable of `vars` to `root`, as strings.
pub fn apply_overrides(
    root: &mut Value,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<Overrides, Vec<OverrideError>> {
    let mut set = Overrides::default();
    let mut errors = Vec::new();
    let mut vars: Vec<_> = vars.into_iter().filter(|(k, _)| k.starts_with(PREFIX)).collect();
    vars.sort();
    for (var, raw) in vars {
        let path: Vec<String> = var[PREFIX.len()..].split("__").map(|s| s.to_ascii_lowercase()).collect();
        if path.iter().any(String::is_empty) {
            errors.push((var, "empty key segment (use single words between '__')".into()));
            continue;
        }
        let mut resolved = Vec::with_capacity(path.len());
        match set_path(root, &path, Value::String(unquote(&raw)), &mut resolved) {
            Ok(()) => {
                set.0.insert(display_path(&resolved), Override { var, raw, path: resolved });
            }
            Err(reason) => errors.push((var, reason)),
        }
    }
    if errors.is_empty() { Ok(set) } else { Err(errors) }
}

/// A value written as a quoted TOML string (`"12000"`, `'x'`) is that
/// string; any other text is taken as it is.
fn unquote(raw: &str) -> String {
    let quoted = raw.len() >= 2
        && ((raw.starts_with('"') && raw.ends_with('"')) || (raw.starts_with('\'') && raw.ends_with('\'')));
    let parsed = quoted.then(|| format!("v = {raw}").parse::<toml::Table>().ok()).flatten();
    match parsed.as_ref().and_then(|t| t.get("v")).and_then(Value::as_str) {
        Some(s) => s.to_owned(),
        None => raw.to_owned(),
    }
}

/// The value an override's text stands for when its key is not a string:
/// the text read as a TOML value (`10`, `true`, `["1s", "2s"]`).
pub fn retype(raw: &str) -> Option<Value> {
    format!("v = {raw}").parse::<toml::Table>().ok().and_then(|mut t| t.remove("v")).filter(|v| !v.is_str())
}

/// Replaces the value at `path` (array entries by position).
pub fn replace_at(root: &mut Value, path: &[String], value: Value) -> bool {
    let mut node = root;
    for seg in path {
        node = match node {
            Value::Array(items) => match seg.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                Some(n) => n,
                None => return false,
            },
            Value::Table(t) => match t.get_mut(seg) {
                Some(n) => n,
                None => return false,
            },
            _ => return false,
        };
    }
    *node = value;
    true
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

/// An id as it can be written in a variable name: upper case, every
/// character but letters and digits as `_`.
pub fn env_name(id: &str) -> String {
    id.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect()
}

/// The id an entry of an array of tables is addressed by.
fn entry_id(entry: &Value) -> Option<String> {
    let t = entry.as_table()?;
    match t.get("id").and_then(Value::as_str) {
        Some(id) => Some(id.to_owned()),
        None => t.get("name").and_then(Value::as_str).map(super::validate::slug),
    }
}

fn set_path(node: &mut Value, path: &[String], value: Value, resolved: &mut Vec<String>) -> Result<(), String> {
    let (head, rest) = path.split_first().expect("non-empty path");
    match node {
        Value::Table(table) => {
            resolved.push(head.clone());
            if rest.is_empty() {
                table.insert(head.clone(), value);
                return Ok(());
            }
            let child = table.entry(head.clone()).or_insert_with(|| Value::Table(Default::default()));
            set_path(child, rest, value, resolved)
        }
        Value::Array(items) => {
            let array = display_path(resolved);
            if head.parse::<usize>().is_ok() {
                return Err(format!(
                    "'{head}' is a position in {array}: address an entry by its id (POSTBACK__{}__<ID>__...), \
                     so that reordering the file cannot move this value to another entry",
                    env_name(&array)
                ));
            }
            let wanted = env_name(head);
            let matches: Vec<usize> = items
                .iter()
                .enumerate()
                .filter(|(_, e)| entry_id(e).is_some_and(|id| env_name(&id) == wanted))
                .map(|(i, _)| i)
                .collect();
            let i = match matches.as_slice() {
                [i] => *i,
                [] => {
                    let ids: Vec<String> = items.iter().filter_map(entry_id).collect();
                    return Err(format!("no entry of {array} has the id '{head}' (ids: {})", ids.join(", ")));
                }
                _ => {
                    let ids: Vec<String> = matches.iter().filter_map(|&i| entry_id(&items[i])).collect();
                    return Err(format!(
                        "'{head}' names more than one entry of {array} ({}): give them ids that differ in more than punctuation",
                        ids.join(", ")
                    ));
                }
            };
            if rest.is_empty() {
                return Err(format!("'{head}' names a whole entry of {array}: set one of its keys"));
            }
            resolved.push(i.to_string());
            set_path(&mut items[i], rest, value, resolved)
        }
        _ => Err(format!("'{head}' is below a value that is not a table")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(toml_text: &str, vars: &[(&str, &str)]) -> Result<(Value, Overrides), Vec<OverrideError>> {
        let mut v: Value = toml::from_str(toml_text).unwrap();
        let set = apply_overrides(&mut v, vars.iter().map(|(k, v)| (k.to_string(), v.to_string())))?;
        Ok((v, set))
    }

    #[test]
    fn sets_nested_keys_as_strings_and_array_entries_by_id() {
        let (v, set) = apply(
            "[kafka]\nbootstrap_servers = 'a:1'\n[[partners]]\nid = 'other'\n[[partners]]\nid = 'acme-ads'\n\
             [[postbacks]]\nname = 'Acme | install'",
            &[
                ("POSTBACK__KAFKA__BOOTSTRAP_SERVERS", "b:2"),
                ("POSTBACK__PROCESS__MAX_BATCH", "10"),
                ("POSTBACK__PARTNERS__ACME_ADS__SIGNING_SECRET", "12345"),
                ("POSTBACK__POSTBACKS__ACME_INSTALL__URL", "https://x"),
                ("POSTBACK__KAFKA__CONSUMER__MAX.POLL.INTERVAL.MS", "\"12000\""),
                ("OTHER", "ignored"),
            ],
        )
        .unwrap();
        assert_eq!(v["kafka"]["bootstrap_servers"].as_str(), Some("b:2"));
        assert_eq!(v["process"]["max_batch"].as_str(), Some("10"));
        assert_eq!(v["partners"][1]["signing_secret"].as_str(), Some("12345"));
        assert!(v["partners"][0].get("signing_secret").is_none());
        assert_eq!(v["postbacks"][0]["url"].as_str(), Some("https://x"));
        assert_eq!(v["kafka"]["consumer"]["max.poll.interval.ms"].as_str(), Some("12000"));
        assert_eq!(set.0["partners[1].signing_secret"].var, "POSTBACK__PARTNERS__ACME_ADS__SIGNING_SECRET");
        assert_eq!(set.0["postbacks[0].url"].var, "POSTBACK__POSTBACKS__ACME_INSTALL__URL");
    }

    #[test]
    fn positions_unknown_and_ambiguous_ids_are_refused() {
        let text = "[[partners]]\nid = 'a.b'\n[[partners]]\nid = 'a_b'\n[[partners]]\nid = 'c'";
        let err = apply(
            text,
            &[
                ("POSTBACK__PARTNERS__0__ID", "y"),
                ("POSTBACK__PARTNERS__A_B__RATE_LIMIT", "5/s"),
                ("POSTBACK__PARTNERS__NOPE__RATE_LIMIT", "5/s"),
            ],
        )
        .unwrap_err();
        assert_eq!(
            err,
            vec![
                (
                    "POSTBACK__PARTNERS__0__ID".to_string(),
                    "'0' is a position in partners: address an entry by its id (POSTBACK__PARTNERS__<ID>__...), \
                     so that reordering the file cannot move this value to another entry"
                        .to_string()
                ),
                (
                    "POSTBACK__PARTNERS__A_B__RATE_LIMIT".to_string(),
                    "'a_b' names more than one entry of partners (a.b, a_b): give them ids that differ in more than punctuation"
                        .to_string()
                ),
                (
                    "POSTBACK__PARTNERS__NOPE__RATE_LIMIT".to_string(),
                    "no entry of partners has the id 'nope' (ids: a.b, a_b, c)".to_string()
                ),
            ]
        );
    }

    #[test]
    fn values_are_retyped_only_when_they_read_as_another_type() {
        assert_eq!(retype("10"), Some(Value::Integer(10)));
        assert_eq!(retype("[\"1s\"]"), Some(Value::Array(vec![Value::String("1s".into())])));
        assert_eq!(retype("\"quoted\""), None);
        assert_eq!(retype("plain text"), None);
    }

    #[test]
    fn display_paths_use_brackets() {
        assert_eq!(display_path(&["partners".into(), "0".into(), "rate_limit".into()]), "partners[0].rate_limit");
        let mut v: Value = toml::from_str("[[partners]]\nid = 'a'\nrate_limit = '1/s'").unwrap();
        let path = ["partners".to_owned(), "0".to_owned(), "rate_limit".to_owned()];
        assert!(replace_at(&mut v, &path, Value::String("2/s".into())));
        assert_eq!(v["partners"][0]["rate_limit"].as_str(), Some("2/s"));
    }
}
