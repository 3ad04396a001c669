//! Non-negative decimals for revenue: exact products (revenue share,
//! currency rates) and comparisons (revenue filters), never floats. Amounts
//! are at most 40 characters, so schoolbook arithmetic on digits is cheap
//! and never overflows.

use std::cmp::Ordering;
use std::fmt;

/// `digits × 10^-scale`; `digits` big-endian, without leading zeros.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decimal {
    digits: Vec<u8>,
    scale: u32,
}

impl Decimal {
    /// `"4.99"`, `"10"`, `"0.5"`; no sign, no exponent, at most 40 characters.
    pub fn parse(s: &str) -> Option<Decimal> {
        if s.is_empty() || s.len() > 40 {
            return None;
        }
        let (int, frac) = s.split_once('.').unwrap_or((s, ""));
        if int.is_empty() || (s.contains('.') && frac.is_empty()) {
            return None;
        }
        if !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
            return None;
        }
        let digits = int.bytes().chain(frac.bytes()).map(|b| b - b'0').collect();
        Some(Decimal { digits, scale: frac.len() as u32 }.normalized())
    }

    /// The exact product.
    pub fn mul(&self, other: &Decimal) -> Decimal {
        let (a, b) = (&self.digits, &other.digits);
        let mut acc = vec![0u32; a.len() + b.len()];
        for (i, &x) in a.iter().enumerate().rev() {
            for (j, &y) in b.iter().enumerate().rev() {
                acc[i + j + 1] += u32::from(x) * u32::from(y);
            }
        }
        for k in (1..acc.len()).rev() {
            let carry = acc[k] / 10;
            acc[k] %= 10;
            acc[k - 1] += carry;
        }
        let digits = acc.into_iter().map(|d| d as u8).collect();
        Decimal { digits, scale: self.scale + other.scale }.normalized()
    }

    /// Divides by 100 (a percentage), exactly.
    pub fn percent(&self) -> Decimal {
        Decimal { digits: self.digits.clone(), scale: self.scale + 2 }.normalized()
    }

    /// Drops trailing fractional zeros and leading zeros.
    fn normalized(mut self) -> Decimal {
        while self.scale > 0 && self.digits.last() == Some(&0) {
            self.digits.pop();
            self.scale -= 1;
        }
        let lead = self.digits.iter().take_while(|d| **d == 0).count();
        self.digits.drain(..lead);
        if self.digits.is_empty() {
            // zero has one form
            self.scale = 0;
        }
        self
    }

    /// (integer digits, fraction digits padded to `scale`).
    fn aligned(&self, scale: u32) -> Vec<u8> {
        let mut d = self.digits.clone();
        d.extend(std::iter::repeat_n(0, (scale - self.scale) as usize));
        d
    }
}

impl Ord for Decimal {
    fn cmp(&self, other: &Decimal) -> Ordering {
        let scale = self.scale.max(other.scale);
        let (a, b) = (self.aligned(scale), other.aligned(scale));
        a.len().cmp(&b.len()).then_with(|| a.cmp(&b))
    }
}

impl PartialOrd for Decimal {
    fn partial_cmp(&self, other: &Decimal) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scale = self.scale as usize;
        let mut digits: Vec<u8> = self.digits.clone();
        if digits.len() <= scale {
            let pad = scale + 1 - digits.len();
            digits.splice(0..0, std::iter::repeat_n(0, pad));
        }
        let point = digits.len() - scale;
        for (i, d) in digits.iter().enumerate() {
            if i == point {
                f.write_str(".")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::parse(s).unwrap()
    }

    #[test]
    fn products_are_exact_to_the_last_decimal() {
        assert_eq!(d("4.99").mul(&d("30")).percent().to_string(), "1.497");
        assert_eq!(d("0.01").mul(&d("12.5")).percent().to_string(), "0.00125");
        assert_eq!(d("4.99").mul(&d("1.0842")).to_string(), "5.410158");
        assert_eq!(d("100").mul(&d("50")).percent().to_string(), "50");
        assert_eq!(d("0").mul(&d("30")).percent().to_string(), "0");
        let big = "9".repeat(40);
        assert_eq!(d(&big).mul(&d("100")).percent().to_string(), big);
        assert_eq!(
            d("123456789012345678901234567890.123456789").mul(&d("2")).to_string(),
            "246913578024691357802469135780.246913578"
        );
    }

    #[test]
    fn comparisons_ignore_trailing_zeros() {
        assert_eq!(d("5.00"), d("5"));
        assert_eq!(d("0.00"), d("0"));
        assert_eq!(d("0").percent(), d("0"));
        assert!(d("4.99") < d("5"));
        assert!(d("10") > d("9.999"));
        assert!(d("0.5") > d("0.05"));
        assert_eq!(d("007.50").to_string(), "7.5");
    }

    #[test]
    fn only_plain_decimals_parse() {
        for bad in ["", "-1", "1e3", "1.", ".5", "1,5", "1.2.3", " 1", &"1".repeat(41)] {
            assert_eq!(Decimal::parse(bad), None, "{bad:?}");
        }
    }
}
