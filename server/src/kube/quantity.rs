//! Kubernetes quantities (`10Gi`, `500M`, `20`, `1e3`) of whole units: read as a quota or a
//! limit range gives them, and written back in Kubernetes' canonical form (`1024Mi` is `1Gi`),
//! keeping the kind of suffix they were given with.

use std::fmt;

/// The largest quantity Kubernetes represents as an integer (`int64`).
const MAX: u128 = i64::MAX as u128;

/// How a quantity is written: with binary suffixes (`Ki`, `Mi`, ...), decimal ones (`k`, `M`,
/// ...), or a decimal exponent (`1e3`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuantityFormat {
    BinarySi,
    DecimalSi,
    DecimalExponent,
}

/// A whole number of units (bytes, objects) as Kubernetes writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quantity {
    pub value: u64,
    pub format: QuantityFormat,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    #[error(
        "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    )]
    Syntax,
    #[error("must be greater than or equal to 0")]
    Negative,
    #[error("must be a whole number")]
    Fraction,
    #[error("must be at most {MAX}")]
    TooLarge,
}

const BINARY: [(&str, u32); 6] = [
    ("Ki", 1),
    ("Mi", 2),
    ("Gi", 3),
    ("Ti", 4),
    ("Pi", 5),
    ("Ei", 6),
];
const DECIMAL: [(&str, u32); 6] = [("k", 1), ("M", 2), ("G", 3), ("T", 4), ("P", 5), ("E", 6)];

/// `number * base^exponent / 10^fraction_digits` when it is a whole number.
fn whole(
    digits: u128,
    fraction_digits: u32,
    multiplier: u128,
    divisor: u128,
) -> Result<u64, QuantityError> {
    let numerator = digits
        .checked_mul(multiplier)
        .ok_or(QuantityError::TooLarge)?;
    let denominator = 10u128
        .checked_pow(fraction_digits)
        .and_then(|d| d.checked_mul(divisor))
        .ok_or(QuantityError::Fraction)?;
    if !numerator.is_multiple_of(denominator) {
        return Err(QuantityError::Fraction);
    }
    let value = numerator / denominator;
    if value > MAX {
        return Err(QuantityError::TooLarge);
    }
    u64::try_from(value).map_err(|_| QuantityError::TooLarge)
}

impl Quantity {
    pub fn binary(value: u64) -> Self {
        Quantity {
            value,
            format: QuantityFormat::BinarySi,
        }
    }

    pub fn decimal(value: u64) -> Self {
        Quantity {
            value,
            format: QuantityFormat::DecimalSi,
        }
    }

    /// Reads a quantity as Kubernetes does; it must come to a whole, non-negative number.
    pub fn parse(text: &str) -> Result<Quantity, QuantityError> {
        let (negative, rest) = match text.as_bytes().first() {
            Some(b'-') => (true, &text[1..]),
            Some(b'+') => (false, &text[1..]),
            _ => (false, text),
        };
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, suffix) = rest.split_at(number_end);
        let (integer, fraction) = number.split_once('.').unwrap_or((number, ""));
        if integer.is_empty() && fraction.is_empty() || fraction.contains('.') {
            return Err(QuantityError::Syntax);
        }
        let all_digits = format!("{integer}{fraction}");
        // Leading zeros say nothing; more digits than 38 cannot be a quantity Kubernetes holds.
        let significant = all_digits.trim_start_matches('0');
        if significant.len() > 38 {
            return Err(QuantityError::TooLarge);
        }
        let digits: u128 = if significant.is_empty() {
            0
        } else {
            significant.parse().map_err(|_| QuantityError::Syntax)?
        };
        let fraction_digits = u32::try_from(fraction.len()).map_err(|_| QuantityError::Syntax)?;
        let (format, multiplier, divisor) = if suffix.is_empty() {
            (QuantityFormat::DecimalSi, 1, 1)
        } else if let Some((_, power)) = BINARY.iter().find(|(s, _)| *s == suffix) {
            (QuantityFormat::BinarySi, 1024u128.pow(*power), 1)
        } else if let Some((_, power)) = DECIMAL.iter().find(|(s, _)| *s == suffix) {
            (QuantityFormat::DecimalSi, 1000u128.pow(*power), 1)
        } else if suffix == "m" {
            (QuantityFormat::DecimalSi, 1, 1000)
        } else if let Some(exponent) = suffix.strip_prefix(['e', 'E']) {
            let exponent: i32 = exponent.parse().map_err(|_| QuantityError::Syntax)?;
            let power = 10u128
                .checked_pow(exponent.unsigned_abs())
                .ok_or(QuantityError::TooLarge)?;
            if exponent >= 0 {
                (QuantityFormat::DecimalExponent, power, 1)
            } else {
                (QuantityFormat::DecimalExponent, 1, power)
            }
        } else {
            return Err(QuantityError::Syntax);
        };
        if negative && digits != 0 {
            return Err(QuantityError::Negative);
        }
        let value = whole(digits, fraction_digits, multiplier, divisor)?;
        Ok(Quantity { value, format })
    }

    /// A short form for messages to people: exact when a binary suffix fits (`900Mi`), else
    /// with two decimals (`1.18Mi`, `1.00Ki`: the decimals say it is rounded); plain below 1024.
    pub fn approximate_bytes(bytes: u64) -> String {
        let exact = Quantity::binary(bytes).to_string();
        if bytes < 1024 || exact.ends_with('i') {
            return exact;
        }
        let (suffix, power) = BINARY
            .iter()
            .rev()
            .find(|(_, power)| bytes >= 1024u64.pow(*power))
            .copied()
            .unwrap_or(("Ki", 1));
        let scaled = bytes as f64 / 1024f64.powi(power as i32);
        format!("{scaled:.2}{suffix}")
    }
}

impl fmt::Display for Quantity {
    /// The canonical form: the largest suffix of the quantity's kind that divides it exactly
    /// (`1536Mi`, `500M`, `1e3`), else the plain number.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = self.value;
        if value == 0 {
            return f.write_str("0");
        }
        match self.format {
            QuantityFormat::BinarySi => {
                for (suffix, power) in BINARY.iter().rev() {
                    let unit = 1024u64.pow(*power);
                    if value.is_multiple_of(unit) {
                        return write!(f, "{}{suffix}", value / unit);
                    }
                }
                // Not a whole number of Ki: as Kubernetes, the decimal form.
                Quantity::decimal(value).fmt(f)
            }
            QuantityFormat::DecimalSi => {
                for (suffix, power) in DECIMAL.iter().rev() {
                    let unit = 1000u64.pow(*power);
                    if value.is_multiple_of(unit) {
                        return write!(f, "{}{suffix}", value / unit);
                    }
                }
                write!(f, "{value}")
            }
            QuantityFormat::DecimalExponent => {
                for power in (1..=6u32).rev() {
                    let unit = 1000u64.pow(power);
                    if value.is_multiple_of(unit) {
                        return write!(f, "{}e{}", value / unit, 3 * power);
                    }
                }
                write!(f, "{value}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canonical(text: &str) -> String {
        Quantity::parse(text).unwrap().to_string()
    }

    #[test]
    fn quantities_read_in_every_notation() {
        let value = |text: &str| Quantity::parse(text).map(|q| q.value);
        assert_eq!(value("20"), Ok(20));
        assert_eq!(value("+20"), Ok(20));
        assert_eq!(value("10Gi"), Ok(10 * 1024 * 1024 * 1024));
        assert_eq!(value("500M"), Ok(500_000_000));
        assert_eq!(value("1.5Gi"), Ok(1536 * 1024 * 1024));
        assert_eq!(value("1e3"), Ok(1000));
        assert_eq!(value("12E-1"), Err(QuantityError::Fraction));
        assert_eq!(value("2000m"), Ok(2));
        assert_eq!(value("0.5"), Err(QuantityError::Fraction));
        assert_eq!(value("500m"), Err(QuantityError::Fraction));
        assert_eq!(value("-1"), Err(QuantityError::Negative));
        assert_eq!(value("-0"), Ok(0));
        assert_eq!(value("0"), Ok(0));
        assert_eq!(value(".5k"), Ok(500));
        for bad in [
            "", "Gi", "10 Gi", "10gi", "1..2", "1.2.3", "ten", "10Gi ", "e3", "1e",
        ] {
            assert_eq!(value(bad), Err(QuantityError::Syntax), "{bad:?}");
        }
        assert_eq!(value("9Ei"), Err(QuantityError::TooLarge));
        assert_eq!(value("8Ei"), Err(QuantityError::TooLarge));
        assert_eq!(value("9223372036854775807"), Ok(i64::MAX as u64));
        assert_eq!(
            value("99999999999999999999999999999999999999999"),
            Err(QuantityError::TooLarge)
        );
        assert_eq!(value("1e400"), Err(QuantityError::TooLarge));
    }

    #[test]
    fn quantities_are_written_as_kubernetes_writes_them() {
        assert_eq!(canonical("1024Mi"), "1Gi");
        assert_eq!(canonical("1.5Gi"), "1536Mi");
        assert_eq!(canonical("1000M"), "1G");
        assert_eq!(canonical("1500k"), "1500k");
        assert_eq!(canonical("20"), "20");
        assert_eq!(canonical("2000"), "2k");
        assert_eq!(canonical("1e3"), "1e3");
        assert_eq!(canonical("0Gi"), "0");
        assert_eq!(Quantity::binary(1536).to_string(), "1536");
        assert_eq!(Quantity::binary(1_234_567).to_string(), "1234567");
        assert_eq!(Quantity::binary(943_718_400).to_string(), "900Mi");
    }

    #[test]
    fn bytes_are_shortened_for_people() {
        assert_eq!(Quantity::approximate_bytes(523), "523");
        assert_eq!(Quantity::approximate_bytes(943_718_400), "900Mi");
        assert_eq!(Quantity::approximate_bytes(1_234_567), "1.18Mi");
        assert_eq!(Quantity::approximate_bytes(1536), "1.50Ki");
        assert_eq!(Quantity::approximate_bytes(1025), "1.00Ki");
    }
}
