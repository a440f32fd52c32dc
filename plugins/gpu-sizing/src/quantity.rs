//! Just enough of Kubernetes' `resource.Quantity` to multiply a per-GPU amount by a GPU count exactly
//! (`16Gi` x 2 = `32Gi`, `0.5` x 3 = `1.5`, `500m` x 4 = `2000m`): decimal digits times an integer, suffix kept.

use std::fmt;

use serde::Deserialize;
use serde_json::Value;

/// Binary and decimal suffixes Kubernetes accepts (no exponent forms).
const SUFFIXES: &[&str] = &[
    "", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei",
];

/// A non-negative quantity: `digits / 10^scale` followed by a suffix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quantity {
    digits: u128,
    scale: u32,
    suffix: String,
}

impl Quantity {
    /// Parse `4`, `3500m`, `0.5`, `16Gi`. Errors say what is wrong, for the config message.
    pub fn parse(text: &str) -> Result<Self, String> {
        let split = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(text.len());
        let (number, suffix) = text.split_at(split);
        if !SUFFIXES.contains(&suffix) {
            return Err(format!(
                "`{text}` has an unknown unit `{suffix}` (use e.g. 500m, 4, 16Gi)"
            ));
        }
        let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty() && frac.is_empty() || frac.contains('.') {
            return Err(format!(
                "`{text}` is not a quantity (use e.g. 500m, 4, 16Gi)"
            ));
        }
        let digits: u128 = format!("{whole}{frac}")
            .parse()
            .map_err(|_| format!("`{text}` is not a quantity (use e.g. 500m, 4, 16Gi)"))?;
        let scale =
            u32::try_from(frac.len()).map_err(|_| format!("`{text}` has too many decimals"))?;
        if scale > 9 {
            return Err(format!("`{text}` has too many decimals"));
        }
        Ok(Self {
            digits,
            scale,
            suffix: suffix.to_owned(),
        })
    }

    /// This quantity times `n`, exactly (saturating far beyond any real node).
    pub fn times(&self, n: u32) -> Self {
        Self {
            digits: self.digits.saturating_mul(u128::from(n)),
            scale: self.scale,
            suffix: self.suffix.clone(),
        }
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pow = 10u128.pow(self.scale);
        let (whole, frac) = (self.digits / pow, self.digits % pow);
        if frac == 0 {
            write!(f, "{whole}{}", self.suffix)
        } else {
            let frac = format!("{frac:0width$}", width = self.scale as usize);
            write!(f, "{whole}.{}{}", frac.trim_end_matches('0'), self.suffix)
        }
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // YAML users write `cpuPerGpu: 4` as often as `cpuPerGpu: "4"`.
        match Value::deserialize(deserializer)? {
            Value::String(s) => Self::parse(&s),
            Value::Number(n) => Self::parse(&n.to_string()),
            other => Err(format!(
                "expected a quantity such as 4 or 16Gi, found {other}"
            )),
        }
        .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multiplies_exactly() {
        let cases = [
            ("16Gi", 2, "32Gi"),
            ("0.5", 3, "1.5"),
            ("500m", 4, "2000m"),
            ("4", 8, "32"),
            ("0.25", 4, "1"),
        ];
        for (q, n, want) in cases {
            assert_eq!(
                Quantity::parse(q).unwrap().times(n).to_string(),
                want,
                "{q} x {n}"
            );
        }
    }

    #[test]
    fn rejects_garbage() {
        for q in ["", "Gi", "1.2.3", "4 cores", "1e3", "-1", "12X"] {
            assert!(Quantity::parse(q).is_err(), "{q}");
        }
    }
}
