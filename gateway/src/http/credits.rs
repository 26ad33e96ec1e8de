//! Credits on the wire. Inside, every amount is an integer number of
//! milli-credits; over HTTP it is a JSON number of credits with at most
//! three decimals (`250`, `0.5`, `12.125`). Whole amounts are written as
//! integers. Input with more decimals, or out of range, is refused.

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

const MILLI: i64 = igny8_domain::billing::MILLI;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CreditAmount(pub i64);

impl CreditAmount {
    pub fn milli(self) -> i64 {
        self.0
    }
}

impl Serialize for CreditAmount {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0 % MILLI == 0 {
            s.serialize_i64(self.0 / MILLI)
        } else {
            s.serialize_f64(self.0 as f64 / MILLI as f64)
        }
    }
}

struct AmountVisitor;

impl Visitor<'_> for AmountVisitor {
    type Value = CreditAmount;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a number of credits with at most 3 decimals")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<CreditAmount, E> {
        v.checked_mul(MILLI)
            .map(CreditAmount)
            .ok_or_else(|| E::custom("amount out of range"))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<CreditAmount, E> {
        i64::try_from(v)
            .map_err(|_| E::custom("amount out of range"))
            .and_then(|v| self.visit_i64(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<CreditAmount, E> {
        let m = v * MILLI as f64;
        if !m.is_finite() || m.abs() > 9.0e15 {
            return Err(E::custom("amount out of range"));
        }
        let r = m.round();
        // More than 3 decimals is refused, up to the precision the number
        // carries: near 10^11 credits a float is only good to ~0.02 milli.
        let precision = (m.abs() * 8.0 * f64::EPSILON).max(1e-6);
        if (m - r).abs() > precision {
            return Err(E::custom("credits have at most 3 decimals"));
        }
        Ok(CreditAmount(r as i64))
    }
}

impl<'de> Deserialize<'de> for CreditAmount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(AmountVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credits_round_trip_exactly() {
        let parse = |s: &str| serde_json::from_str::<CreditAmount>(s);
        assert_eq!(parse("1").unwrap(), CreditAmount(1000));
        assert_eq!(parse("0.5").unwrap(), CreditAmount(500));
        assert_eq!(parse("12.125").unwrap(), CreditAmount(12125));
        assert_eq!(parse("0.1").unwrap(), CreditAmount(100));
        // Large amounts with 3 decimals are exact up to the float's precision.
        assert_eq!(
            parse("123456789012.345").unwrap(),
            CreditAmount(123_456_789_012_345)
        );
        assert_eq!(
            parse("999999999999.999").unwrap(),
            CreditAmount(999_999_999_999_999)
        );
        for bad in [
            "1.0005",
            "123456.7891",
            "1e30",
            "\"1\"",
            "null",
            "99999999999999999999",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let show = |m| serde_json::to_string(&CreditAmount(m)).unwrap();
        assert_eq!(
            (show(250_000), show(249_500), show(1)),
            ("250".into(), "249.5".into(), "0.001".into())
        );
    }
}
