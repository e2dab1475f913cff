//! Time for generated rows, without a date-time crate: civil dates from day numbers,
//! PostgreSQL's epoch (2000-01-01) for binary COPY, and parsing of `--start`.
//!
//! Transaction timestamps are UTC (`timestamp` without time zone, as the schema says).

use std::time::{SystemTime, UNIX_EPOCH};

/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01 00:00:00).
pub const PG_EPOCH_UNIX_US: i64 = 946_684_800_000_000;
const DAY_US: i64 = 86_400_000_000;

/// Now, in microseconds since the Unix epoch.
pub fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// The day number (days since 1970-01-01) of a Unix timestamp in microseconds.
pub fn day_of(unix_us: i64) -> i64 {
    unix_us.div_euclid(DAY_US)
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date (year, month, day) of a day number.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// `YYYY-MM-DD` of a day number.
pub fn date_string(day: i64) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Parses `--start`: `now`, `YYYY-MM-DD` (midnight UTC), or `YYYY-MM-DDTHH:MM:SS`
/// with an optional fraction and `Z` (UTC only). Returns Unix microseconds.
pub fn parse_start(text: &str) -> Result<i64, String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("now") {
        return Ok(now_us());
    }
    let bad =
        || format!("{text:?} is not a UTC time such as 2025-01-31, 2025-01-31T08:00:00Z or now");
    let (date, time) = match text.split_once(['T', ' ']) {
        Some((date, time)) => (date, Some(time.strip_suffix('Z').unwrap_or(time))),
        None => (text, None),
    };
    let mut parts = date.splitn(3, '-');
    let mut num = |max: u32| -> Result<u32, String> {
        let n: u32 = parts.next().ok_or_else(bad)?.parse().map_err(|_| bad())?;
        if n == 0 || n > max {
            return Err(bad());
        }
        Ok(n)
    };
    let (y, m, d) = (num(9999)?, num(12)?, num(31)?);
    if y < 1970 || d > days_in_month(i64::from(y), m) {
        return Err(bad());
    }
    let mut us = days_from_civil(i64::from(y), m, d) * DAY_US;
    if let Some(time) = time {
        let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
        let hms: Vec<&str> = hms.split(':').collect();
        if hms.len() != 3 || frac.len() > 6 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let field = |s: &str, max: i64| -> Result<i64, String> {
            let n: i64 = s.parse().map_err(|_| bad())?;
            if s.len() != 2 || !(0..=max).contains(&n) {
                return Err(bad());
            }
            Ok(n)
        };
        us += field(hms[0], 23)? * 3_600_000_000
            + field(hms[1], 59)? * 60_000_000
            + field(hms[2], 59)? * 1_000_000;
        if !frac.is_empty() {
            let digits: i64 = frac.parse().map_err(|_| bad())?;
            us += digits * 10i64.pow(6 - frac.len() as u32);
        }
    }
    Ok(us)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 1, 1) * DAY_US, PG_EPOCH_UNIX_US);
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        for day in (-1000..30_000).step_by(7) {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y, m, d), day);
        }
        assert_eq!(date_string(days_from_civil(2024, 2, 29)), "2024-02-29");
        assert_eq!(day_of(-1), -1);
    }

    #[test]
    fn start_formats() {
        let midnight = days_from_civil(2025, 1, 31) * DAY_US;
        assert_eq!(parse_start("2025-01-31"), Ok(midnight));
        assert_eq!(
            parse_start("2025-01-31T08:00:01Z"),
            Ok(midnight + 8 * 3_600_000_000 + 1_000_000)
        );
        assert_eq!(
            parse_start("2025-01-31 00:00:00.25"),
            Ok(midnight + 250_000)
        );
        assert!(parse_start("now").unwrap() > midnight);
        for bad in [
            "",
            "yesterday",
            "2025-13-01",
            "2025-02-30",
            "2025-01-31T25:00:00Z",
            "2025-01-31T08:00",
            "1969-12-31",
            "2025-01-31T08:00:00+02:00",
        ] {
            assert!(parse_start(bad).is_err(), "{bad}");
        }
    }
}
