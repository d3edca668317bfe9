//! Prometheus' JSON answers decoded as they are read: each sample goes straight into what the
//! caller keeps (a sum per timestamp, or one value per series) and the series cap is applied at
//! the series that crosses it. Nothing is held as generic JSON, so an answer costs about its own
//! bytes, not ten times them.

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

/// Where the samples of an answer go: Unix seconds and the value as Prometheus wrote it (`NaN`,
/// `+Inf` included). Each kind is dropped unless the sink takes it.
pub trait Sink {
    /// A sample of a range answer's series (`values`).
    fn point(&mut self, _at: f64, _value: f64) {}
    /// An instant answer's series value (`value`).
    fn value(&mut self, _at: f64, _value: f64) {}
    /// Whether the next series' labels are wanted ([`Sink::labels`]); they are skipped unread
    /// otherwise.
    fn wants_labels(&self) -> bool {
        false
    }
    /// A series' labels (`metric`), when [`Sink::wants_labels`] said so.
    fn labels(&mut self, _labels: std::collections::BTreeMap<String, String>) {}
}

/// The API's envelope: whether it succeeded, and its error if not. The `data` went to the sink.
#[derive(Debug, Default)]
pub struct Envelope {
    /// `success` or `error`.
    pub status: String,
    /// Whether a `data` member was present.
    pub has_data: bool,
    /// Series seen in `data.result`.
    pub series: usize,
    /// Samples seen in all series.
    pub samples: usize,
    /// `errorType`, e.g. `bad_data`.
    pub error_type: Option<String>,
    /// `error`.
    pub error: Option<String>,
}

/// Why an answer did not decode.
#[derive(Debug)]
pub enum DecodeError {
    /// More series than the cap (the count so far).
    TooManySeries(usize),
    /// Not the JSON the API documents.
    Json(serde_json::Error),
}

/// Decodes `body`, sending every sample to `sink`; at most `max_series` series.
pub fn decode(
    body: &[u8],
    max_series: usize,
    sink: &mut dyn Sink,
) -> Result<Envelope, DecodeError> {
    let mut state = State {
        sink,
        max_series,
        envelope: Envelope::default(),
        over: None,
    };
    let mut de = serde_json::Deserializer::from_slice(body);
    let result = EnvelopeSeed(&mut state)
        .deserialize(&mut de)
        .and_then(|()| de.end());
    match (result, state.over) {
        (_, Some(n)) => Err(DecodeError::TooManySeries(n)),
        (Err(e), None) => Err(DecodeError::Json(e)),
        (Ok(()), None) => Ok(state.envelope),
    }
}

struct State<'s> {
    sink: &'s mut dyn Sink,
    max_series: usize,
    envelope: Envelope,
    /// Set when the series cap was crossed (the decode then stops with an error).
    over: Option<usize>,
}

struct EnvelopeSeed<'a, 's>(&'a mut State<'s>);

impl<'de> DeserializeSeed<'de> for EnvelopeSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for EnvelopeSeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("the API's envelope object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            match key.as_ref() {
                "status" => self.0.envelope.status = map.next_value()?,
                "errorType" => self.0.envelope.error_type = map.next_value()?,
                "error" => self.0.envelope.error = map.next_value()?,
                "data" => {
                    self.0.envelope.has_data = true;
                    map.next_value_seed(DataSeed(self.0))?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

struct DataSeed<'a, 's>(&'a mut State<'s>);

impl<'de> DeserializeSeed<'de> for DataSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for DataSeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("`data`")
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            if key == "result" {
                map.next_value_seed(ResultSeed(self.0))?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
    // `parse_query` answers an AST and `format_query` a string: nothing to keep of either.
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
}

struct ResultSeed<'a, 's>(&'a mut State<'s>);

impl<'de> DeserializeSeed<'de> for ResultSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ResultSeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("`data.result`")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        loop {
            if self.0.envelope.series == self.0.max_series {
                // One more is over the cap: stop reading here.
                if seq.next_element::<IgnoredAny>()?.is_some() {
                    self.0.over = Some(self.0.envelope.series + 1);
                    return Err(de::Error::custom("over the series cap"));
                }
                return Ok(());
            }
            if seq.next_element_seed(SeriesSeed(self.0))?.is_none() {
                return Ok(());
            }
            self.0.envelope.series += 1;
        }
    }
}

struct SeriesSeed<'a, 's>(&'a mut State<'s>);

impl<'de> DeserializeSeed<'de> for SeriesSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for SeriesSeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a series object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            match key.as_ref() {
                "values" => map.next_value_seed(ValuesSeed(self.0))?,
                "value" => {
                    let Sample(at, value) = map.next_value()?;
                    self.0.envelope.samples += 1;
                    self.0.sink.value(at, value);
                }
                "metric" if self.0.sink.wants_labels() => {
                    let labels = map.next_value()?;
                    self.0.sink.labels(labels);
                }
                // Labels (`metric`) and native histograms are not read into memory.
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

struct ValuesSeed<'a, 's>(&'a mut State<'s>);

impl<'de> DeserializeSeed<'de> for ValuesSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ValuesSeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("`values`")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(Sample(at, value)) = seq.next_element()? {
            self.0.envelope.samples += 1;
            self.0.sink.point(at, value);
        }
        Ok(())
    }
}

/// `[unix seconds, "value"]`, the value parsed as Prometheus writes it (`NaN`, `+Inf`, `-Inf`).
struct Sample(f64, f64);

impl<'de> serde::Deserialize<'de> for Sample {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Sample, D::Error> {
        let (at, text): (f64, Cow<'de, str>) = serde::Deserialize::deserialize(d)?;
        let value = text
            .parse::<f64>()
            .map_err(|_| de::Error::custom(format!("sample value `{text}` is not a number")))?;
        Ok(Sample(at, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Collect(Vec<(f64, f64)>);
    impl Sink for Collect {
        fn point(&mut self, at: f64, value: f64) {
            self.0.push((at, value));
        }
        fn value(&mut self, at: f64, value: f64) {
            self.0.push((at, -value));
        }
    }

    fn run(body: &str, max_series: usize) -> (Result<Envelope, DecodeError>, Vec<(f64, f64)>) {
        let mut sink = Collect::default();
        let result = decode(body.as_bytes(), max_series, &mut sink);
        (result, sink.0)
    }

    #[test]
    fn answers_decode_into_the_sink() {
        // (body, series, samples)
        let cases = [
            (
                r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"a":"b"},"values":[[1,"2"],[2,"NaN"]]},{"metric":{},"values":[[1,"+Inf"]]}]}}"#,
                2,
                vec![(1.0, 2.0), (2.0, f64::NAN), (1.0, f64::INFINITY)],
            ),
            (
                r#"{"data":{"result":[{"value":[1.5,"7"],"metric":{"__name__":"x"}}],"resultType":"vector"},"status":"success"}"#,
                1,
                vec![(1.5, -7.0)],
            ),
            (
                r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#,
                0,
                vec![],
            ),
            // parse_query's AST and format_query's string are accepted and not kept.
            (
                r#"{"status":"success","data":{"type":"vectorSelector","name":"up","matchers":[]}}"#,
                0,
                vec![],
            ),
            (r#"{"status":"success","data":"up"}"#, 0, vec![]),
        ];
        for (body, series, samples) in cases {
            let (result, got) = run(body, 10);
            let envelope = result.unwrap_or_else(|e| panic!("{body}: {e:?}"));
            assert_eq!(envelope.status, "success", "{body}");
            assert_eq!(envelope.series, series, "{body}");
            assert_eq!(envelope.samples, samples.len(), "{body}");
            assert_eq!(format!("{got:?}"), format!("{samples:?}"), "{body}");
        }
    }

    #[test]
    fn errors_keep_their_type_and_text() {
        let (result, _) = run(
            r#"{"status":"error","errorType":"bad_data","error":"parse error at char 3"}"#,
            10,
        );
        let envelope = result.unwrap();
        assert_eq!(envelope.error_type.as_deref(), Some("bad_data"));
        assert_eq!(envelope.error.as_deref(), Some("parse error at char 3"));
        assert!(!envelope.has_data);
    }

    #[test]
    fn the_series_cap_stops_the_read_at_the_series_over_it() {
        let series = r#"{"metric":{},"values":[[1,"1"]]}"#;
        let body = format!(
            r#"{{"status":"success","data":{{"result":[{}]}}}}"#,
            [series; 5].join(",")
        );
        let (result, got) = run(&body, 3);
        assert!(
            matches!(result, Err(DecodeError::TooManySeries(4))),
            "{result:?}"
        );
        assert_eq!(got.len(), 3, "samples of the series within the cap only");
        let (result, _) = run(&body, 5);
        assert_eq!(result.unwrap().series, 5);
    }

    #[test]
    fn what_is_not_the_api_is_a_json_error() {
        for body in [
            "",
            "<html>502 Bad Gateway</html>",
            r#"{"status":"success","data":{"result":[{"values":[[1,"one"]]}]}}"#,
            r#"{"status":"success","data":{"result":[{"values":[[1]]}]}}"#,
            r#"{"status":"success"} trailing"#,
        ] {
            let (result, _) = run(body, 10);
            assert!(
                matches!(result, Err(DecodeError::Json(_))),
                "{body}: {result:?}"
            );
        }
    }
}
