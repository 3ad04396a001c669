//! What an attempt's result means for the job (pure): delivered, retry, or
//! dead (DLQ). Redirects are never followed and count as failures that a
//! retry cannot fix (the URL is wrong), so they go to the DLQ.

use std::time::Duration;

/// How an attempt ended, before interpretation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// The partner answered.
    Status {
        code: u16,
        retry_after: Option<Duration>,
        location: Option<String>,
    },
    Timeout,
    Connect(String),
    /// The SSRF guard refused every address of the host.
    Blocked(String),
    /// The request could not even be built (bad URL, header).
    Invalid(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Delivered,
    Retry { reason: String, retry_after: Option<Duration> },
    Dead { reason: String },
    Blocked { reason: String },
}

pub fn judge(a: &Attempt) -> Verdict {
    match a {
        Attempt::Status { code, .. } if (200..300).contains(code) => Verdict::Delivered,
        Attempt::Status { code, location, .. } if (300..400).contains(code) => Verdict::Dead {
            reason: format!("http {code}: redirect not followed (location: {})", location.as_deref().unwrap_or("none")),
        },
        Attempt::Status { code, retry_after, .. } if *code == 408 || *code == 429 || *code >= 500 => {
            Verdict::Retry { reason: format!("http {code}"), retry_after: *retry_after }
        }
        Attempt::Status { code, .. } => Verdict::Dead { reason: format!("http {code}") },
        Attempt::Timeout => Verdict::Retry { reason: "timeout".into(), retry_after: None },
        Attempt::Connect(e) => Verdict::Retry { reason: format!("connect error: {e}"), retry_after: None },
        Attempt::Blocked(e) => Verdict::Blocked { reason: format!("blocked address: {e}") },
        Attempt::Invalid(e) => Verdict::Dead { reason: format!("invalid request: {e}") },
    }
}

/// The status class label for metrics.
pub fn class(a: &Attempt) -> &'static str {
    match a {
        Attempt::Status { code, .. } => match code / 100 {
            1 => "1xx",
            2 => "2xx",
            3 => "3xx",
            4 => "4xx",
            _ => "5xx",
        },
        Attempt::Timeout => "timeout",
        Attempt::Connect(_) | Attempt::Invalid(_) => "error",
        Attempt::Blocked(_) => "blocked",
    }
}

/// `Retry-After` as seconds or an HTTP date, relative to `now` (unix secs).
pub fn parse_retry_after(value: &str, now_secs: i64) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate(v)?;
    Some(Duration::from_secs(u64::try_from(at.saturating_sub(now_secs)).unwrap_or(0)))
}

/// IMF-fixdate ("Wed, 21 Oct 2015 07:28:00 GMT") to unix seconds.
fn httpdate(v: &str) -> Option<i64> {
    let parts: Vec<&str> = v.split_whitespace().collect();
    let [_, day, month, year, time, "GMT"] = parts.as_slice() else { return None };
    let month = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        .iter()
        .position(|m| m == month)? as i64
        + 1;
    let (day, year): (i64, i64) = (day.parse().ok()?, year.parse().ok()?);
    let t: Vec<i64> = time.split(':').map(|x| x.parse().ok()).collect::<Option<_>>()?;
    let [h, m, s] = t.as_slice() else { return None };
    // the partner's text: out of range is no date (and no overflow below)
    let valid = (1970..=9999).contains(&year)
        && (1..=31).contains(&day)
        && (0..24).contains(h)
        && (0..60).contains(m)
        && (0..=60).contains(s);
    valid.then(|| crate::domain::time::days_from_civil(year, month, day) * 86400 + h * 3600 + m * 60 + s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_dates_out_of_range_are_no_dates() {
        let now = 1_445_412_480; // Wed, 21 Oct 2015 07:28:00 GMT
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:29:00 GMT", now), Some(Duration::from_secs(60)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now), Some(Duration::ZERO));
        for bad in [
            "Wed, 21 Oct 99999999999999 07:28:00 GMT",
            "Wed, 21 Oct -9223372036854775808 07:28:00 GMT",
            "Wed, 9223372036854775807 Oct 2015 07:28:00 GMT",
            "Wed, 21 Oct 2015 9223372036854775807:00:00 GMT",
            "Wed, 21 Oct 2015 07:61:00 GMT",
            "Wed, 21 Oct 2015 07:28 GMT",
        ] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad}");
        }
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", i64::MIN),
            Some(Duration::from_secs(u64::try_from(i64::MAX).unwrap()))
        );
        assert_eq!(parse_retry_after("18446744073709551615", now), Some(Duration::from_secs(u64::MAX)));
    }

    fn status(code: u16) -> Attempt {
        Attempt::Status { code, retry_after: None, location: None }
    }

    #[test]
    fn verdicts() {
        assert_eq!(judge(&status(200)), Verdict::Delivered);
        assert_eq!(judge(&status(204)), Verdict::Delivered);
        assert_eq!(judge(&status(400)), Verdict::Dead { reason: "http 400".into() });
        assert_eq!(judge(&status(410)), Verdict::Dead { reason: "http 410".into() });
        assert_eq!(judge(&status(408)), Verdict::Retry { reason: "http 408".into(), retry_after: None });
        assert_eq!(judge(&status(503)), Verdict::Retry { reason: "http 503".into(), retry_after: None });
        assert_eq!(
            judge(&Attempt::Status { code: 301, retry_after: None, location: Some("https://x/".into()) }),
            Verdict::Dead { reason: "http 301: redirect not followed (location: https://x/)".into() }
        );
        assert_eq!(judge(&Attempt::Timeout), Verdict::Retry { reason: "timeout".into(), retry_after: None });
        assert_eq!(
            judge(&Attempt::Blocked("127.0.0.1 (loopback)".into())),
            Verdict::Blocked { reason: "blocked address: 127.0.0.1 (loopback)".into() }
        );
        assert_eq!(class(&status(302)), "3xx");
        assert_eq!(class(&Attempt::Timeout), "timeout");
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        assert_eq!(parse_retry_after("120", 0), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1_445_412_470), Some(Duration::from_secs(10)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1_445_412_490), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", 0), None);
    }
}
