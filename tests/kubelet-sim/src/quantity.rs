//! Kubernetes resource quantities ("500m", "1.5", "4Gi", "1e3") as exact milli-units, for fit checks.

/// Errors parsing a quantity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    /// Not a Kubernetes quantity.
    #[error("invalid quantity {0:?}")]
    Invalid(String),
    /// Too large to represent.
    #[error("quantity {0:?} is out of range")]
    Overflow(String),
}

/// Parse a quantity into milli-units, rounding a fractional milli-unit up (as the apiserver does for cpu).
/// `"500m"` → 500, `"2"` → 2000, `"1Ki"` → 1_024_000.
pub fn parse_milli(s: &str) -> Result<i128, QuantityError> {
    let invalid = || QuantityError::Invalid(s.to_owned());
    let overflow = || QuantityError::Overflow(s.to_owned());
    let t = s.trim();
    let (negative, t) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let num_end = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, suffix) = t.split_at(num_end);
    if number.is_empty() || number == "." || number.matches('.').count() > 1 {
        return Err(invalid());
    }
    let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
    let digits = format!("{int_part}{frac_part}");
    let mantissa: i128 = if digits.is_empty() {
        0
    } else {
        digits.parse().map_err(|_| overflow())?
    };
    // value = mantissa * 10^-frac_len * multiplier, in milli-units: * 1000.
    let frac_len = i32::try_from(frac_part.len()).map_err(|_| overflow())?;
    let (binary, decimal_exp): (i128, i32) = match suffix {
        "" => (1, 0),
        "m" => (1, -3),
        "k" => (1, 3),
        "M" => (1, 6),
        "G" => (1, 9),
        "T" => (1, 12),
        "P" => (1, 15),
        "E" => (1, 18),
        "Ki" => (1 << 10, 0),
        "Mi" => (1 << 20, 0),
        "Gi" => (1 << 30, 0),
        "Ti" => (1 << 40, 0),
        "Pi" => (1 << 50, 0),
        "Ei" => (1 << 60, 0),
        e if e.starts_with(['e', 'E']) => (1, e[1..].parse::<i32>().map_err(|_| invalid())?),
        _ => return Err(invalid()),
    };
    let exp = decimal_exp + 3 - frac_len;
    let scaled = mantissa.checked_mul(binary).ok_or_else(overflow)?;
    let value = if exp >= 0 {
        let factor = 10i128
            .checked_pow(exp.unsigned_abs())
            .ok_or_else(overflow)?;
        scaled.checked_mul(factor).ok_or_else(overflow)?
    } else {
        let Some(divisor) = 10i128.checked_pow(exp.unsigned_abs()) else {
            return Ok(i128::from(scaled > 0));
        };
        // Round up: a request of 0.0001 cpu still needs 1m.
        (scaled + divisor - 1) / divisor
    };
    Ok(if negative { -value } else { value })
}

/// Format milli-units the way the scheduler's messages and `kubectl` show them ("1500m", "2", "4Gi" stays bytes).
pub fn format_milli(milli: i128) -> String {
    if milli % 1000 == 0 {
        (milli / 1000).to_string()
    } else {
        format!("{milli}m")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_quantities() {
        for (q, m) in [
            ("1", 1000),
            ("500m", 500),
            ("0.5", 500),
            ("1.5", 1500),
            ("2k", 2_000_000),
            ("1Ki", 1_024_000),
            ("4Gi", 4 * (1 << 30) * 1000),
            ("1e3", 1_000_000),
            ("1E3", 1_000_000),
            ("0.0001", 1),
            ("+3", 3000),
            ("-1", -1000),
            ("0", 0),
        ] {
            assert_eq!(parse_milli(q), Ok(m), "{q}");
        }
    }

    #[test]
    fn rejects_garbage() {
        for q in ["", "abc", "1x", "1..2", ".", "1Gb", "m"] {
            assert!(
                matches!(parse_milli(q), Err(QuantityError::Invalid(_))),
                "{q}"
            );
        }
        assert!(matches!(
            parse_milli("99999999999999999999999999999999999999999"),
            Err(QuantityError::Overflow(_))
        ));
    }

    #[test]
    fn formats() {
        assert_eq!(format_milli(2000), "2");
        assert_eq!(format_milli(1500), "1500m");
    }
}
