//! UTC timestamps for humans (inspect output), without a date library.

/// `2025-01-31T12:00:00Z` for unix milliseconds.
pub fn format_ms(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// (year, month, day) of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Unix milliseconds of a time as people write it on a command line:
/// `2026-12-01` (midnight UTC), `2026-12-01T10:30:00Z`,
/// `2026-12-01T10:30:00+03:00` (RFC 3339, fractions of a second allowed),
/// or unix milliseconds.
pub fn parse_time(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let bad = || {
        format!(
            "'{s}' is not a time: write 2026-12-01, 2026-12-01T10:30:00Z, 2026-12-01T10:30:00+03:00 or unix milliseconds"
        )
    };
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().map_err(|_| bad());
    }
    let num = |t: &str| -> Result<i64, String> {
        if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) { t.parse().map_err(|_| bad()) } else { Err(bad()) }
    };
    let (date, time) = s.split_once(['T', 't', ' ']).unwrap_or((s, ""));
    let parts: Vec<&str> = date.split('-').collect();
    let [y, m, d] = parts.as_slice() else { return Err(bad()) };
    let (y, m, d) = (num(y)?, num(m)?, num(d)?);
    if y.to_string().len() != 4 || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return Err(bad());
    }
    let mut ms = days_from_civil(y, m, d) * 86_400_000;
    if time.is_empty() {
        return Ok(ms);
    }
    // the offset: Z, or +HH:MM / -HH:MM
    let (clock, offset_min) = if let Some(c) = time.strip_suffix(['Z', 'z']) {
        (c, 0)
    } else if let Some(at) = time.rfind(['+', '-']) {
        let (c, off) = time.split_at(at);
        let sign = if off.starts_with('-') { -1 } else { 1 };
        let hm: Vec<&str> = off[1..].split(':').collect();
        let [h, mi] = hm.as_slice() else { return Err(bad()) };
        (c, sign * (num(h)? * 60 + num(mi)?))
    } else {
        return Err(bad());
    };
    let (clock, frac) = clock.split_once('.').unwrap_or((clock, ""));
    let hms: Vec<&str> = clock.split(':').collect();
    let [h, mi, sec] = hms.as_slice() else { return Err(bad()) };
    let (h, mi, sec) = (num(h)?, num(mi)?, num(sec)?);
    if h > 23 || mi > 59 || sec > 60 {
        return Err(bad());
    }
    let frac_ms = if frac.is_empty() { 0 } else { num(&format!("{frac:0<3}")[..3])? };
    ms += ((h * 60 + mi - offset_min) * 60 + sec) * 1000 + frac_ms;
    Ok(ms)
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_times_as_people_write_them() {
        use super::parse_time;
        assert_eq!(parse_time("2025-01-01"), Ok(1_735_689_600_000));
        assert_eq!(parse_time("2025-01-01T00:00:00Z"), Ok(1_735_689_600_000));
        assert_eq!(parse_time("2025-01-01T03:00:00+03:00"), Ok(1_735_689_600_000));
        assert_eq!(parse_time("2024-12-31T22:30:00-01:30"), Ok(1_735_689_600_000));
        assert_eq!(parse_time("2025-01-01T00:00:00.25Z"), Ok(1_735_689_600_250));
        assert_eq!(parse_time("1735689600000"), Ok(1_735_689_600_000));
        for bad in ["yesterday", "2025-13-01", "2025-01-01T25:00:00Z", "2025-01-01T00:00:00", "25-01-01", ""] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn formats() {
        assert_eq!(super::format_ms(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::format_ms(1_735_689_600_000), "2025-01-01T00:00:00Z");
        assert_eq!(super::format_ms(1_709_208_000_500), "2024-02-29T12:00:00Z");
    }
}

/// A span for people: `7d`, `36h`, `2.5d`, `90s` (the largest unit, with one
/// decimal when it does not divide evenly).
pub fn human_ms(ms: i64) -> String {
    for (unit, size) in [("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)] {
        if ms >= size {
            return if ms % size == 0 {
                format!("{}{unit}", ms / size)
            } else {
                format!("{:.1}{unit}", ms as f64 / size as f64)
            };
        }
    }
    format!("{ms}ms")
}

#[cfg(test)]
mod human_tests {
    #[test]
    fn spans_read_as_people_write_them() {
        assert_eq!(super::human_ms(7 * 86_400_000), "7d");
        assert_eq!(super::human_ms(8 * 86_400_000 + 43_200_000), "8.5d");
        assert_eq!(super::human_ms(90_000), "1.5m");
        assert_eq!(super::human_ms(250), "250ms");
    }
}
