//! Timestamps as the server stores and prints them: unix milliseconds inside, ISO-8601 UTC on the wire
//! (`2026-11-30T05:01:32.123000+00:00`, the shape clearml-server's JSON encoder produces).

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A point in time, millisecond precision. Kept as an integer so the store's pure logic can take "now" as a
/// parameter and tests can pick any instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Ts(pub i64);

impl Ts {
    /// The wall clock now.
    pub fn now() -> Self {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        Ts(ms)
    }

    /// Whole seconds since the epoch (JWT `iat`/`exp`).
    pub fn unix_secs(self) -> i64 {
        self.0.div_euclid(1000)
    }

    /// This instant plus `secs` seconds.
    pub fn plus_secs(self, secs: i64) -> Self {
        Ts(self.0.saturating_add(secs.saturating_mul(1000)))
    }

    /// ISO-8601 in UTC with microseconds and an explicit offset.
    pub fn to_iso(self) -> String {
        let secs = self.0.div_euclid(1000);
        let ms = self.0.rem_euclid(1000);
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:06}+00:00",
            sod / 3600,
            (sod % 3600) / 60,
            sod % 60,
            ms * 1000
        )
    }

    /// Parses what [`Ts::to_iso`] prints, and the common variants (`Z`, no fraction, no offset).
    pub fn parse_iso(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || (b[10] != b'T' && b[10] != b' ') {
            return None;
        }
        let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
        let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
        let mut ms = 0;
        let rest = &s[19..];
        if let Some(frac) = rest.strip_prefix('.') {
            let digits: String = frac.chars().take_while(char::is_ascii_digit).collect();
            let padded = format!("{digits:0<3}");
            ms = padded.get(0..3)?.parse::<i64>().ok()?;
        }
        let days = days_from_civil(y, mo, d);
        Some(Ts((days * 86_400 + h * 3600 + mi * 60 + se) * 1000 + ms))
    }
}

impl Serialize for Ts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_iso())
    }
}

impl<'de> Deserialize<'de> for Ts {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ts::parse_iso(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("not an ISO-8601 date: {s}")))
    }
}

// Howard Hinnant's civil-calendar algorithms: exact for the proleptic Gregorian calendar, no table, no crate.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(Ts(0).to_iso(), "1970-01-01T00:00:00.000000+00:00");
        // 2024-02-29T12:34:56.789Z: a leap day catches off-by-one month arithmetic.
        assert_eq!(
            Ts(1_709_210_096_789).to_iso(),
            "2024-02-29T12:34:56.789000+00:00"
        );
    }

    #[test]
    fn parses_what_it_prints_and_common_variants() {
        for ms in [0, 1_709_210_096_789, 4_102_444_800_000, 951_782_400_001] {
            assert_eq!(Ts::parse_iso(&Ts(ms).to_iso()), Some(Ts(ms)));
        }
        assert_eq!(
            Ts::parse_iso("2024-02-29T12:34:56Z"),
            Some(Ts(1_709_210_096_000))
        );
        assert_eq!(
            Ts::parse_iso("2024-02-29T12:34:56.7"),
            Some(Ts(1_709_210_096_700))
        );
        assert_eq!(Ts::parse_iso("yesterday"), None);
    }
}
