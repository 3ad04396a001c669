//! Which DLQ records a replay takes, and what each record is — pure, so the
//! matching is table-tested without a broker.

use crate::codec::{DecodeOptions, decode_job};
use crate::domain::Job;

/// The two dead-letter queues.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Dlq {
    /// `topics.jobs_dlq`: postbacks given up; back onto `topics.jobs`.
    Jobs,
    /// `topics.events_dlq`: input records the processor could not take;
    /// back onto `topics.events`, keyed and partitioned as before.
    Events,
}

impl Dlq {
    pub fn label(self) -> &'static str {
        match self {
            Dlq::Jobs => "jobs",
            Dlq::Events => "events",
        }
    }
}

/// Which records to replay; every condition given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Jobs of this partner (job DLQ only).
    pub partner: Option<String>,
    /// Records of this app (a job's app; an input record's, when it decodes).
    pub app: Option<String>,
    /// A substring of the record's `error` header.
    pub reason: Option<String>,
    /// Records that reached the DLQ at or after this time (unix ms).
    pub since_ms: Option<i64>,
    /// Records that reached the DLQ before this time (unix ms).
    pub until_ms: Option<i64>,
}

impl Filter {
    /// A stable text of the filter: the replay's cursor is named after it,
    /// so a run with other conditions keeps a cursor of its own.
    pub fn key(&self) -> String {
        format!(
            "partner={};app={};reason={};since={};until={}",
            self.partner.as_deref().unwrap_or(""),
            self.app.as_deref().unwrap_or(""),
            self.reason.as_deref().unwrap_or(""),
            self.since_ms.map_or(String::new(), |t| t.to_string()),
            self.until_ms.map_or(String::new(), |t| t.to_string()),
        )
    }
}

/// One DLQ record as the replay sees it.
pub struct Record<'a> {
    pub value: &'a [u8],
    pub timestamp_ms: Option<i64>,
    /// The `error` header.
    pub error: Option<&'a str>,
    /// The `truncated` header is "true": a cut copy, never replayed.
    pub truncated: bool,
}

/// What to do with a record.
#[derive(Debug, PartialEq)]
pub enum Verdict {
    /// Not asked for.
    Skip,
    /// Asked for, but it cannot be replayed (why).
    Unreplayable(&'static str),
    /// Replay it; the job when it is one.
    Replay(Option<Box<Job>>),
}

/// The verdict for `r` from `dlq` under `f`.
pub fn judge(dlq: Dlq, r: &Record<'_>, f: &Filter, decode: &DecodeOptions) -> Verdict {
    let ts = r.timestamp_ms.unwrap_or(0);
    let plain = f.reason.as_deref().is_none_or(|want| r.error.is_some_and(|e| e.contains(want)))
        && f.since_ms.is_none_or(|s| ts >= s)
        && f.until_ms.is_none_or(|u| ts < u);
    if !plain {
        return Verdict::Skip;
    }
    match dlq {
        Dlq::Jobs => {
            let job = decode_job(r.value).ok();
            let (partner, app) = (job.as_ref().map(|j| j.partner_id.as_str()), job.as_ref().map(|j| j.app_id.as_str()));
            if !wanted(&f.partner, partner) || !wanted(&f.app, app) {
                return Verdict::Skip;
            }
            match job {
                _ if r.truncated => Verdict::Unreplayable("truncated"),
                None => Verdict::Unreplayable("undecodable"),
                Some(job) => Verdict::Replay(Some(Box::new(job))),
            }
        }
        Dlq::Events => {
            // an input record has no partner; asking for one selects nothing
            if f.partner.is_some() {
                return Verdict::Skip;
            }
            if f.app.is_some() {
                let app = crate::codec::decode_event_with(r.value, decode).ok().map(|e| e.app_id);
                if !wanted(&f.app, app.as_deref()) {
                    return Verdict::Skip;
                }
            }
            if r.truncated { Verdict::Unreplayable("truncated") } else { Verdict::Replay(None) }
        }
    }
}

/// Whether a condition `want` holds for `have` (no condition always does;
/// a record without the field never matches one).
fn wanted(want: &Option<String>, have: Option<&str>) -> bool {
    want.as_deref().is_none_or(|w| have == Some(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(partner: &str, app: &str) -> Vec<u8> {
        let mut j = crate::send::step::tests::job(0, 0);
        j.partner_id = partner.into();
        j.app_id = app.into();
        crate::codec::encode_job(&j, crate::codec::JobEncoding::Json)
    }

    fn rec<'a>(value: &'a [u8], ts: i64, error: &'a str, truncated: bool) -> Record<'a> {
        Record { value, timestamp_ms: Some(ts), error: Some(error), truncated }
    }

    fn verdict(dlq: Dlq, r: &Record<'_>, f: &Filter) -> String {
        match judge(dlq, r, f, &DecodeOptions::default()) {
            Verdict::Skip => "skip".into(),
            Verdict::Unreplayable(why) => why.into(),
            Verdict::Replay(Some(j)) => format!("job {}", j.partner_id),
            Verdict::Replay(None) => "record".into(),
        }
    }

    #[test]
    fn filters_select_what_they_say() {
        let acme = job("acme", "game");
        let event = br#"{"event_id":"e1","app_id":"shop","device_id":"d","kind":"install","timestamp_ms":1}"#;
        let all = Filter::default();
        let f = |partner: Option<&str>, app: Option<&str>, reason: Option<&str>, since, until| Filter {
            partner: partner.map(Into::into),
            app: app.map(Into::into),
            reason: reason.map(Into::into),
            since_ms: since,
            until_ms: until,
        };
        let cases: Vec<(Dlq, Record<'_>, Filter, &str)> = vec![
            (Dlq::Jobs, rec(&acme, 10, "http 400", false), all.clone(), "job acme"),
            (
                Dlq::Jobs,
                rec(&acme, 10, "http 400", false),
                f(Some("acme"), Some("game"), Some("400"), Some(10), Some(11)),
                "job acme",
            ),
            (Dlq::Jobs, rec(&acme, 10, "http 400", false), f(Some("zeta"), None, None, None, None), "skip"),
            (Dlq::Jobs, rec(&acme, 10, "http 400", false), f(None, Some("shop"), None, None, None), "skip"),
            (Dlq::Jobs, rec(&acme, 10, "http 400", false), f(None, None, Some("503"), None, None), "skip"),
            (Dlq::Jobs, rec(&acme, 10, "http 400", false), f(None, None, None, Some(11), None), "skip"),
            (Dlq::Jobs, rec(&acme, 10, "http 400", false), f(None, None, None, None, Some(10)), "skip"),
            (Dlq::Jobs, rec(&acme, 10, "too large", true), all.clone(), "truncated"),
            (Dlq::Jobs, rec(b"{not json", 10, "undecodable job", false), all.clone(), "undecodable"),
            (
                Dlq::Jobs,
                rec(b"{not json", 10, "undecodable job", false),
                f(Some("acme"), None, None, None, None),
                "skip",
            ),
            (Dlq::Events, rec(event, 10, "unknown app 'shop'", false), all.clone(), "record"),
            (
                Dlq::Events,
                rec(event, 10, "unknown app 'shop'", false),
                f(None, Some("shop"), Some("unknown app"), None, None),
                "record",
            ),
            (Dlq::Events, rec(event, 10, "unknown app 'shop'", false), f(None, Some("game"), None, None, None), "skip"),
            (Dlq::Events, rec(b"\x00garbage", 10, "invalid", false), f(None, Some("shop"), None, None, None), "skip"),
            (Dlq::Events, rec(event, 10, "x", false), f(Some("acme"), None, None, None, None), "skip"),
            (Dlq::Events, rec(event, 10, "record too large", true), all.clone(), "truncated"),
        ];
        for (dlq, r, filter, want) in cases {
            assert_eq!(verdict(dlq, &r, &filter), want, "{dlq:?} {filter:?}");
        }
    }

    #[test]
    fn each_filter_has_its_own_key() {
        let a = Filter { partner: Some("acme".into()), ..Filter::default() };
        let b = Filter { reason: Some("acme".into()), ..Filter::default() };
        assert_ne!(a.key(), b.key());
        assert_eq!(Filter::default().key(), "partner=;app=;reason=;since=;until=");
    }
}
