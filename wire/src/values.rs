//! Serde for metric values: NaN is a missing point, written as JSON `null` or MessagePack nil
//! by writers that cannot write NaN, and read back as NaN.

use alloc::vec::Vec;
use core::fmt;
use serde::de::{SeqAccess, Visitor};
use serde::{Deserializer, Serializer};

pub fn serialize<S: Serializer>(values: &[f64], s: S) -> Result<S::Ok, S::Error> {
    // serde_json writes non-finite floats as `null`; MessagePack keeps NaN as a float.
    s.collect_seq(values)
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
    struct ValuesVisitor;

    impl<'de> Visitor<'de> for ValuesVisitor {
        type Value = Vec<f64>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a list of numbers (null for a missing point)")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<f64>, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 20));
            while let Some(v) = seq.next_element::<Option<f64>>()? {
                out.push(v.unwrap_or(f64::NAN));
            }
            Ok(out)
        }
    }

    d.deserialize_seq(ValuesVisitor)
}
