//! Re-keying user state written before projects: `app:user` becomes
//! `project:user`, and a user known to several apps of one project becomes
//! one state (the domain's `merge_users` says how).

use super::{RescaleError, TIMEOUT, for_each_record, send};
use crate::config::Config;
use crate::domain::binary;
use crate::domain::user::merge_users;
use crate::kafka::{admin, client, partition_for};
use rdkafka::Offset;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use std::collections::{BTreeMap, HashMap};

/// `app:user` → `project:user`. A key of an app the config no longer has
/// stays as it is (no event of that app is processed any more).
pub fn user_key(key: &[u8], projects: &BTreeMap<String, String>) -> Vec<u8> {
    let Some(colon) = key.iter().position(|b| *b == b':') else { return key.to_vec() };
    let app = std::str::from_utf8(&key[..colon]).ok();
    match app.and_then(|a| projects.get(a)) {
        Some(project) => [project.as_bytes(), &key[colon..]].concat(),
        None => key.to_vec(),
    }
}

/// Reads the whole user changelog (the latest value per key), merges the
/// states that meet under one project key and writes them to `dest`;
/// returns the records written.
pub fn user_changelog(
    config: &Config,
    (source, dest, partitions): (&str, &str, i32),
    projects: &BTreeMap<String, String>,
    progress: &mut dyn FnMut(&str),
) -> Result<u64, RescaleError> {
    let probe = admin::reach(config)?;
    let Some(count) = admin::partitions(&probe, source)? else { return Ok(0) };
    let mut latest: HashMap<Vec<u8>, Option<Vec<u8>>> = HashMap::new();
    for p in 0..count {
        for_each_record(config, (source, p, Offset::Beginning), &mut |key, value| {
            latest.insert(key.unwrap_or_default().to_vec(), value.map(<[u8]>::to_vec));
            Ok(())
        })?;
    }
    let merged = merge(latest, projects, progress);
    let producer: BaseProducer = client::producer(config).create()?;
    for (key, value) in &merged {
        let record = BaseRecord::to(dest)
            .partition(partition_for(key, partitions))
            .key(key.as_slice())
            .payload(value.as_slice());
        send(&producer, record)?;
    }
    producer.flush(TIMEOUT)?;
    progress(&format!("{source} -> {dest}: {} users from {count} partitions, keyed by project", merged.len()));
    Ok(merged.len() as u64)
}

/// A stored record: (key, value).
type Stored = (Vec<u8>, Vec<u8>);

/// New key → the one value stored under it.
fn merge(
    latest: HashMap<Vec<u8>, Option<Vec<u8>>>,
    projects: &BTreeMap<String, String>,
    progress: &mut dyn FnMut(&str),
) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut groups: BTreeMap<Vec<u8>, Vec<Stored>> = BTreeMap::new();
    for (old, value) in latest {
        // a tombstone: the key was deleted
        let Some(value) = value else { continue };
        groups.entry(user_key(&old, projects)).or_default().push((old, value));
    }
    let mut out = BTreeMap::new();
    for (key, mut olds) in groups {
        if olds.len() == 1 && user_key(&olds[0].0, projects) == olds[0].0 {
            // an app no longer configured: copied as it is
            out.insert(key, olds.remove(0).1);
            continue;
        }
        let mut parts = Vec::with_capacity(olds.len());
        for (old, value) in olds {
            let app = String::from_utf8_lossy(old.split(|b| *b == b':').next().unwrap_or_default()).into_owned();
            match binary::decode_user(&value) {
                Ok(st) => parts.push((app, st)),
                Err(e) => progress(&format!(
                    "warning: user state '{}' does not decode ({e}); left out of '{}'",
                    String::from_utf8_lossy(&old),
                    String::from_utf8_lossy(&key)
                )),
            }
        }
        if let Some(st) = merge_users(parts) {
            let mut value = Vec::with_capacity(256);
            binary::encode_user(&st, &mut value);
            out.insert(key, value);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_move_to_their_project_and_unknown_apps_stay() {
        let projects = BTreeMap::from([("game".to_owned(), "p1".to_owned()), ("shop".to_owned(), "p1".to_owned())]);
        assert_eq!(user_key(b"game:u1", &projects), b"p1:u1");
        assert_eq!(user_key(b"shop:u:with:colons", &projects), b"p1:u:with:colons");
        assert_eq!(user_key(b"gone:u1", &projects), b"gone:u1");
        assert_eq!(user_key(b"nocolon", &projects), b"nocolon");
    }
}
