//! Kafka messages to `raw_campaigns` rows: JSON objects with the raw CSV's
//! six fields (what the original Python producer sent), or one CSV record per
//! message. Messages that cannot become a row at all (not JSON, fields
//! missing, too large) are rejected here with a reason; everything else is
//! judged by the cleaning SQL, exactly as `preprocess` judges a CSV line.

use std::borrow::Cow;

use arrow::array::RecordBatch;
use serde_json::{Map, Value};

use crate::csv_records::{Record, RecordSplitter};
use crate::record::{EXTRA_FIELDS, RAW_FIELDS, RawBatchBuilder};
use crate::reject::RejectReason;

/// How record payloads are encoded on the input topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InputFormat {
    /// A JSON object with `creation_time, id, url, title, keywords, description`.
    Json,
    /// One CSV record (no header) with the six fields in the dump's order.
    Csv,
}

/// A consumed message, copied out of librdkafka's buffers.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    /// The payload, or its head when the message was over the size limit.
    pub payload: Vec<u8>,
    /// Size of the whole payload in bytes.
    pub size: usize,
}

/// A message rejected before cleaning, by its index in the micro-batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    pub index: usize,
    pub reason: RejectReason,
    pub detail: String,
}

/// A micro-batch as `raw_campaigns` rows plus the messages that could not
/// become rows. `source_line` of each row is the message's index in the
/// micro-batch, so cleaned rows lead back to their message in any order.
#[derive(Debug)]
pub struct Decoded {
    pub raw: RecordBatch,
    pub rejected: Vec<Rejected>,
}

/// Decodes a micro-batch read from `topic`.
pub fn decode(
    format: InputFormat,
    topic: &str,
    messages: &[Envelope],
    max_bytes: usize,
) -> Decoded {
    let mut builder = RawBatchBuilder::with_capacity(messages.len());
    let mut rejected = Vec::new();
    for (index, message) in messages.iter().enumerate() {
        let payload = &message.payload;
        let result = if message.size > max_bytes {
            Err((
                RejectReason::TooLarge,
                format!(
                    "{} bytes, more than --max-message-bytes {max_bytes}",
                    message.size
                ),
            ))
        } else {
            match format {
                InputFormat::Json => json_fields(payload).map(|f| (None, f)),
                InputFormat::Csv => csv_fields(payload),
            }
        };
        match result {
            // One "input" per micro-batch: the index alone is unique.
            Ok((raw, fields)) => builder.push_fields(
                (topic, 0, index as u64),
                fields.iter().map(|f| f.as_deref()),
                raw.as_deref(),
            ),
            Err((reason, detail)) => rejected.push(Rejected {
                index,
                reason,
                detail,
            }),
        }
    }
    Decoded {
        raw: builder.into_batch(),
        rejected,
    }
}

/// Why a message cannot become a row: a reason code and a detail.
type Unreadable = (RejectReason, String);
type FieldsResult = Result<Vec<Option<String>>, Unreadable>;

/// The common message, read without building a map: the six fields as
/// strings and nothing else the decoder cares about. Field names are
/// [`RAW_FIELDS`] (a unit test checks).
#[derive(serde::Deserialize)]
struct PlainRecord<'a> {
    #[serde(borrow)]
    creation_time: Cow<'a, str>,
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    url: Cow<'a, str>,
    #[serde(borrow)]
    title: Cow<'a, str>,
    #[serde(borrow)]
    keywords: Cow<'a, str>,
    #[serde(borrow)]
    description: Cow<'a, str>,
    /// Present on ragged rows: they take the general path.
    extra_fields: Option<serde::de::IgnoredAny>,
}

/// The six fields of a JSON object. Numbers and booleans are taken as their
/// text (ids often arrive as numbers), `null` as an empty field, a list of
/// keywords as the dump's comma-separated text.
fn json_fields(payload: &[u8]) -> FieldsResult {
    // All six as strings, the usual case, without a map of values: parsing
    // into one was ~2 µs per message on the stream's loop. Anything else
    // (a number, a null, a missing or repeated field, extra fields, bad
    // JSON) takes the general path below, which says what is wrong.
    // A derived struct would also read a JSON array of six strings.
    let object = payload.trim_ascii_start().first() == Some(&b'{');
    if object
        && let Ok(plain) = serde_json::from_slice::<PlainRecord<'_>>(payload)
        && plain.extra_fields.is_none()
    {
        let PlainRecord {
            creation_time,
            id,
            url,
            title,
            keywords,
            description,
            ..
        } = plain;
        return Ok([creation_time, id, url, title, keywords, description]
            .into_iter()
            .map(|f| Some(f.into_owned()))
            .collect());
    }
    general_json_fields(payload)
}

/// [`json_fields`] for any JSON.
fn general_json_fields(payload: &[u8]) -> FieldsResult {
    let object: Map<String, Value> = match serde_json::from_slice(payload) {
        Ok(Value::Object(object)) => object,
        Ok(other) => {
            return Err((
                RejectReason::BadJson,
                format!("expected a JSON object, got {}", kind(&other)),
            ));
        }
        Err(e) => return Err((RejectReason::BadJson, e.to_string())),
    };
    let missing: Vec<String> = RAW_FIELDS
        .iter()
        .filter(|f| !object.contains_key(**f))
        .map(|f| format!("`{f}`"))
        .collect();
    if !missing.is_empty() {
        return Err((
            RejectReason::MissingFields,
            format!("no {}", missing.join(", ")),
        ));
    }
    let mut fields: Vec<Option<String>> = RAW_FIELDS
        .iter()
        .map(|f| match &object[*f] {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            Value::Array(items) => Some(
                items
                    .iter()
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            other => Some(other.to_string()),
        })
        .collect();
    // `adlens produce` keeps the values past the sixth of a ragged CSV row
    // here, so the cleaning rules reject the record as `ragged_row`, as
    // `preprocess` does.
    if let Some(Value::Array(extra)) = object.get(EXTRA_FIELDS) {
        fields.extend(extra.iter().map(|v| Some(v.to_string())));
    }
    Ok(fields)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// One CSV record, split by the same reader `preprocess` uses, so a message
/// is judged as the same line of a dump would be: a ragged one still becomes
/// a row (the SQL rejects it as `ragged_row`), a broken one (bad bytes, an
/// open quote) is rejected with the reader's reason.
fn csv_fields(payload: &[u8]) -> Result<(Option<String>, Vec<Option<String>>), Unreadable> {
    // One read takes the whole message (the next one finds the end).
    let mut records = RecordSplitter::with_chunk(payload, payload.len() + 1);
    let record = match records.next_record() {
        Ok(Some(record)) => record,
        Ok(None) => return Err((RejectReason::BadCsv, "empty message".into())),
        Err(e) => return Err((RejectReason::BadCsv, e.to_string())),
    };
    if !matches!(records.next_record(), Ok(None)) {
        return Err((
            RejectReason::BadCsv,
            "more than one record in a message".into(),
        ));
    }
    match record {
        Record::Fields { fields, .. } => {
            let text = String::from_utf8_lossy(payload).trim_end().to_string();
            Ok((Some(text), fields.into_iter().map(Some).collect()))
        }
        Record::Broken {
            reason, raw_text, ..
        } => Err((reason, raw_text)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::AsArray;

    fn envelope(payload: &str) -> Envelope {
        Envelope {
            partition: 0,
            offset: 0,
            key: None,
            payload: payload.as_bytes().to_vec(),
            size: payload.len(),
        }
    }

    #[test]
    fn the_plain_path_reads_what_the_general_one_reads() {
        let payloads = [
            r#"{"creation_time":"2023-05-17 10:00:00","id":"42","url":"https://a.com","title":"H\u00e9 \"q\"","keywords":"a, b","description":"-"}"#,
            r#" {"description":"d","keywords":"","title":"t","url":"","id":"7","creation_time":"x","other":1}"#,
            r#"{"creation_time":"c","id":"1","url":"u","title":"t","keywords":"k","description":"d","extra_fields":null}"#,
            r#"{"creation_time":"c","id":"1","url":"u","title":"t","keywords":"k","description":"d","extra_fields":["x"]}"#,
            r#"{"creation_time":"c","id":"1","id":"2","url":"u","title":"t","keywords":"k","description":"d"}"#,
            r#"{"creation_time":"c","id":1,"url":"u","title":"t","keywords":["a"],"description":null}"#,
            r#"["c","1","u","t","k","d"]"#,
            r#"{"creation_time":"c","id":"1"}"#,
        ];
        for payload in payloads {
            assert_eq!(
                json_fields(payload.as_bytes()),
                general_json_fields(payload.as_bytes()),
                "{payload}"
            );
        }
        // The struct's names are the contract's, in its order.
        let object: serde_json::Map<String, Value> = RAW_FIELDS
            .iter()
            .map(|f| (f.to_string(), Value::String(format!("<{f}>"))))
            .collect();
        let payload = serde_json::to_vec(&object).unwrap();
        let plain: PlainRecord<'_> = serde_json::from_slice(&payload).unwrap();
        assert_eq!(
            [
                plain.creation_time,
                plain.id,
                plain.url,
                plain.title,
                plain.keywords,
                plain.description
            ]
            .map(|f| f.into_owned()),
            RAW_FIELDS.map(|f| format!("<{f}>"))
        );
    }

    /// A JSON value a producer might send for a field.
    fn field_value() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        prop_oneof![
            12 => any::<String>().prop_map(Value::String),
            1 => any::<i64>().prop_map(Value::from),
            1 => Just(Value::Null),
            1 => prop::collection::vec(any::<String>(), 0..3).prop_map(Value::from),
        ]
    }

    proptest::proptest! {
        #[test]
        fn the_plain_path_agrees_with_the_general_one_on_any_object(
            values in proptest::collection::vec(field_value(), 6),
            present in proptest::collection::vec(proptest::bool::weighted(0.95), 6),
            extra in proptest::option::of(field_value()),
            other in proptest::option::of(field_value()),
            reversed: bool,
        ) {
            let mut pairs: Vec<(String, Value)> = RAW_FIELDS
                .iter()
                .zip(values)
                .zip(present)
                .filter(|(_, present)| *present)
                .map(|((name, value), _)| (name.to_string(), value))
                .collect();
            pairs.extend(extra.map(|v| (EXTRA_FIELDS.to_string(), v)));
            pairs.extend(other.map(|v| ("other".to_string(), v)));
            if reversed {
                pairs.reverse();
            }
            let body: Vec<String> = pairs
                .iter()
                .map(|(k, v)| format!("{}:{v}", Value::String(k.clone())))
                .collect();
            let payload = format!("{{{}}}", body.join(","));
            proptest::prop_assert_eq!(
                json_fields(payload.as_bytes()),
                general_json_fields(payload.as_bytes())
            );
        }
    }

    #[test]
    fn json_objects_become_rows_and_the_rest_is_rejected_with_a_reason() {
        let messages = [
            envelope(
                r#"{"creation_time":"2023-05-17 10:00:00","id":42,"url":"https://a.com","title":"Hi","keywords":["a","b"],"description":null}"#,
            ),
            envelope("not json"),
            envelope(r#"{"id":"1"}"#),
            envelope("[1,2]"),
            envelope(&"x".repeat(200)),
        ];
        let decoded = decode(InputFormat::Json, "t", &messages, 150);
        assert_eq!(decoded.raw.num_rows(), 1);
        let id = decoded.raw.column_by_name("id").unwrap().as_string::<i32>();
        assert_eq!(id.value(0), "42");
        let keywords = decoded
            .raw
            .column_by_name("keywords")
            .unwrap()
            .as_string::<i32>();
        assert_eq!(keywords.value(0), "a,b");
        let reasons: Vec<(usize, RejectReason)> = decoded
            .rejected
            .iter()
            .map(|r| (r.index, r.reason))
            .collect();
        assert_eq!(
            reasons,
            [
                (1, RejectReason::BadJson),
                (2, RejectReason::MissingFields),
                (3, RejectReason::BadJson),
                (4, RejectReason::TooLarge)
            ]
        );
        assert!(
            decoded.rejected[1].detail.contains("`url`"),
            "{:?}",
            decoded.rejected[1]
        );
    }

    #[test]
    fn csv_records_keep_quoted_commas_and_newlines() {
        let messages = [
            envelope("2023-05-17 10:00:00,7,https://a.com,\"Hello, world\",k,\"line\nbreak\""),
            envelope("2023-05-17,8,only-three"),
        ];
        let decoded = decode(InputFormat::Csv, "t", &messages, 1 << 20);
        assert_eq!(decoded.raw.num_rows(), 2);
        let title = decoded
            .raw
            .column_by_name("title")
            .unwrap()
            .as_string::<i32>();
        assert_eq!(title.value(0), "Hello, world");
        let counts = decoded.raw.column_by_name("field_count").unwrap();
        let counts = counts.as_primitive::<arrow::datatypes::Int32Type>();
        assert_eq!(counts.values(), &[6, 3]);
    }
}
