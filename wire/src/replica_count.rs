//! Reads a response's `replicas` from any number type a guest may write, and rejects values that
//! are not a whole count in `0..=u32::MAX` with a message saying what was wrong.

use core::fmt;
use serde::de::{self, Deserializer, Visitor};

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    d.deserialize_any(CountVisitor)
}

struct CountVisitor;

fn out_of_range<E: de::Error>(v: impl fmt::Display) -> E {
    E::custom(format_args!(
        "replicas must be a whole number in 0..=4294967295, got {v}"
    ))
}

impl<'de> Visitor<'de> for CountVisitor {
    type Value = Option<u32>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a replica count")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        u32::try_from(v).map(Some).map_err(|_| out_of_range(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        u32::try_from(v).map(Some).map_err(|_| out_of_range(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        // Languages without integers (AssemblyScript's f64, JSON) may send 3.0; accept whole floats.
        if v.is_finite() && v >= 0.0 && v <= u32::MAX as f64 && v == (v as u64) as f64 {
            Ok(Some(v as u32))
        } else {
            Err(out_of_range(v))
        }
    }

    fn visit_f32<E: de::Error>(self, v: f32) -> Result<Self::Value, E> {
        self.visit_f64(v as f64)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(CountVisitor)
    }
}
