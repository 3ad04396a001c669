//! Secrets by reference: any string value of the config — in the file or
//! set by an environment override — may hold `${env:NAME}` (a variable of
//! the process) or `${file:/path}` (a file's contents, one trailing newline
//! dropped, as Kubernetes mounts a Secret), whole or inside a longer text
//! (`url = "https://pb.acme.example/i?key=${env:ACME_KEY}"`); `$${` is a
//! literal `${`. The model is Kafka Connect's config providers.
//!
//! Every value a reference brings in is a secret, and so is every value of
//! a key that holds a credential ([`is_secret_key`]): all of them go into
//! the config's [`Redactor`], so they are printed as `***` wherever they
//! end up. References are resolved again on every reload, so a rotated
//! secret file is picked up (the reload watcher watches the files too).

use super::env::display_path;
use crate::telemetry::redact::Redactor;
use std::path::PathBuf;
use toml::Value;

/// What resolving the references of a config found.
#[derive(Debug, Clone, Default)]
pub struct Resolved {
    pub redactor: Redactor,
    /// Files that `${file:…}` read, for the reload watcher.
    pub files: Vec<PathBuf>,
    /// A digest of what they held when read: the watcher reloads when it
    /// changes.
    pub digest: u64,
}

/// A digest of `contents` (the secret files, in order; unreadable as None).
pub fn digest<'a>(contents: impl IntoIterator<Item = Option<&'a [u8]>>) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for c in contents {
        c.hash(&mut h);
    }
    h.finish()
}

/// Where references look things up (the process, or a test's own values).
pub trait Lookup {
    fn env(&self, name: &str) -> Option<String>;
    fn file(&self, path: &str) -> std::io::Result<String>;
}

/// The variables a config is loaded with, and the file system.
pub struct Vars(pub std::collections::HashMap<String, String>);

impl Lookup for Vars {
    fn env(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }

    fn file(&self, path: &str) -> std::io::Result<String> {
        std::fs::read_to_string(path)
    }
}

/// Keys whose values are credentials even when written literally: a key
/// path (`partners[0].signing_secret`, `kafka.client.sasl.password`) whose
/// last segment names one.
pub fn is_secret_key(path: &[String]) -> bool {
    let Some(last) = path.last() else { return false };
    let last = last.to_ascii_lowercase();
    last.contains("password")
        || last.contains("secret")
        || last.contains("token")
        || last.ends_with("key.pem")
        || last == "sasl.oauthbearer.config"
}

/// Replaces every reference in `root`'s strings; the errors name the key.
pub fn resolve(root: &mut Value, lookup: &dyn Lookup) -> Result<Resolved, Vec<(String, String)>> {
    let mut out = Resolved::default();
    let mut errors = Vec::new();
    let mut contents = Vec::new();
    walk(root, &mut Vec::new(), lookup, &mut out, &mut errors, &mut contents);
    out.digest = digest(contents.iter().map(|c: &Option<String>| c.as_deref().map(str::as_bytes)));
    if errors.is_empty() { Ok(out) } else { Err(errors) }
}

/// What the secret files held, in the order they were read.
type Contents = Vec<Option<String>>;

fn walk(
    node: &mut Value,
    path: &mut Vec<String>,
    lookup: &dyn Lookup,
    out: &mut Resolved,
    errors: &mut Vec<(String, String)>,
    contents: &mut Contents,
) {
    match node {
        Value::String(s) => {
            let secret_key = is_secret_key(path);
            match expand(s, lookup, out, contents) {
                Ok(Some(expanded)) => *s = expanded,
                Ok(None) => {}
                Err(reason) => errors.push((display_path(path), reason)),
            }
            if secret_key {
                out.redactor.add(s);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                path.push(i.to_string());
                walk(item, path, lookup, out, errors, contents);
                path.pop();
            }
        }
        Value::Table(table) => {
            for (k, v) in table.iter_mut() {
                path.push(k.clone());
                walk(v, path, lookup, out, errors, contents);
                path.pop();
            }
        }
        _ => {}
    }
}

/// `text` with its references replaced; None when it has none.
fn expand(
    text: &str,
    lookup: &dyn Lookup,
    out: &mut Resolved,
    contents: &mut Contents,
) -> Result<Option<String>, String> {
    if !text.contains("${") {
        return Ok(None);
    }
    let mut result = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("${") {
        if rest[..at].ends_with('$') {
            // `$${` is a literal `${`
            result.push_str(&rest[..at - 1]);
            result.push_str("${");
            rest = &rest[at + 2..];
            continue;
        }
        result.push_str(&rest[..at]);
        let Some(end) = rest[at..].find('}') else {
            return Err(format!("'{}' opens a reference that is never closed with '}}'", &rest[at..]));
        };
        let reference = &rest[at + 2..at + end];
        let value = lookup_reference(reference, lookup, out, contents)?;
        out.redactor.add(&value);
        result.push_str(&value);
        rest = &rest[at + end + 1..];
    }
    result.push_str(rest);
    Ok(Some(result))
}

fn lookup_reference(
    reference: &str,
    lookup: &dyn Lookup,
    out: &mut Resolved,
    contents: &mut Contents,
) -> Result<String, String> {
    match reference.split_once(':') {
        Some(("env", name)) if !name.is_empty() => {
            lookup.env(name).ok_or_else(|| format!("${{env:{name}}}: the environment variable {name} is not set"))
        }
        Some(("file", path)) if !path.is_empty() => {
            out.files.push(PathBuf::from(path));
            let read = lookup.file(path);
            contents.push(read.as_ref().ok().cloned());
            let text = read.map_err(|e| format!("${{file:{path}}}: cannot read {path}: {e}"))?;
            // a Secret mounted by Kubernetes has no newline; one written
            // by `echo` has one that is not part of the secret
            let text = text.strip_suffix('\n').map(|t| t.strip_suffix('\r').unwrap_or(t)).unwrap_or(&text);
            Ok(text.to_owned())
        }
        _ => Err(format!(
            "'${{{reference}}}' is not a reference: use ${{env:NAME}} or ${{file:/path}} (write $${{ for a literal '${{')"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct Fake(HashMap<&'static str, &'static str>);

    impl Lookup for Fake {
        fn env(&self, name: &str) -> Option<String> {
            self.0.get(format!("env:{name}").as_str()).map(|s| s.to_string())
        }

        fn file(&self, path: &str) -> std::io::Result<String> {
            self.0.get(format!("file:{path}").as_str()).map(|s| s.to_string()).ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory (os error 2)")
            })
        }
    }

    fn fake() -> Fake {
        Fake(HashMap::from([
            ("env:ACME_KEY", "k-123/456"),
            ("env:NUMERIC", "31415926"),
            ("file:/run/secrets/acme", "file-secret\n"),
        ]))
    }

    fn resolved(text: &str) -> (Value, Result<Resolved, Vec<(String, String)>>) {
        let mut v: Value = toml::from_str(text).unwrap();
        let r = resolve(&mut v, &fake());
        (v, r)
    }

    #[test]
    fn references_are_replaced_whole_or_inside_a_text() {
        let (v, r) = resolved(
            "[[partners]]\nid = 'acme'\nsigning_secret = '${file:/run/secrets/acme}'\n\
             [[postbacks]]\nurl = 'https://pb.acme.example/i?key=${env:ACME_KEY}&n=${env:NUMERIC}&lit=$${env:X}'",
        );
        let r = r.unwrap();
        assert_eq!(v["partners"][0]["signing_secret"].as_str(), Some("file-secret"));
        assert_eq!(
            v["postbacks"][0]["url"].as_str(),
            Some("https://pb.acme.example/i?key=k-123/456&n=31415926&lit=${env:X}")
        );
        assert_eq!(r.files, vec![PathBuf::from("/run/secrets/acme")]);
        assert_eq!(r.redactor.redact("k-123/456 k-123%2F456 31415926 file-secret"), "*** *** *** ***");
    }

    #[test]
    fn literal_credentials_are_secrets_too() {
        let (_, r) = resolved(
            "[schema_registry]\nurl = 'http://r'\npassword = 'hunter22'\n[kafka.client]\n'sasl.password' = 'kafka-pw'\n\
             'ssl.key.pem' = 'PEMDATA'\n'client.id' = 'visible'",
        );
        let r = r.unwrap();
        assert_eq!(r.redactor.redact("hunter22 kafka-pw PEMDATA visible"), "*** *** *** visible");
    }

    #[test]
    fn bad_references_are_errors_naming_the_key() {
        let (_, r) = resolved(
            "[[partners]]\nid = 'a'\nsigning_secret = '${env:MISSING}'\n[admin]\ninspect_token = '${file:/nope}'\n\
             [send]\nproxy = '${vault:x}'\n[topics]\njobs = 'x${env:ACME_KEY'",
        );
        assert_eq!(
            r.unwrap_err(),
            vec![
                (
                    "admin.inspect_token".into(),
                    "${file:/nope}: cannot read /nope: No such file or directory (os error 2)".into()
                ),
                (
                    "partners[0].signing_secret".into(),
                    "${env:MISSING}: the environment variable MISSING is not set".into()
                ),
                (
                    "send.proxy".into(),
                    "'${vault:x}' is not a reference: use ${env:NAME} or ${file:/path} (write $${ for a literal '${')"
                        .into()
                ),
                ("topics.jobs".into(), "'${env:ACME_KEY' opens a reference that is never closed with '}'".into()),
            ]
        );
    }
}
