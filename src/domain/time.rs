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

#[cfg(test)]
mod tests {
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
