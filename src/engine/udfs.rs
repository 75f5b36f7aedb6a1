//! Scalar UDFs that put the [`crate::clean`] rules into SQL. One generic
//! struct serves every string-to-string rule; `split_keywords` returns a
//! list, `campaign_tags` reads three columns into two, and `month_of` a timestamp.

use std::borrow::Cow;
use std::fmt::Write;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, ListBuilder, StringArray, StringBuilder, StructArray, new_null_array,
};
use arrow::datatypes::{DataType, Field, Fields, TimeUnit, TimestampMicrosecondType};
use chrono::Datelike;
use datafusion::common::cast::{as_large_string_array, as_string_array, as_string_view_array};
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use crate::clean::{lang, text, url};

/// The string-to-string cleaning rules callable from SQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TextRule {
    /// `nonblank(text)`: without edge spaces, NULL when nothing is left;
    /// SQL's `nullif(trim(text), '')`.
    Nonblank,
    /// `canonical_url(raw_url)`: unwrapped, untracked, normalised URL.
    CanonicalUrl,
    /// `url_host(canonical_url)`: the host of a canonical URL.
    UrlHost,
    /// `registered_domain(host)`: registered domain by the Public Suffix List.
    RegisteredDomain,
    /// `normalize_text(text)`: entity-decoded, NFKC, no invisible characters.
    NormalizeText,
    /// `text_script(text)`: dominant Unicode script.
    TextScript,
    /// `script_language(text)`: the language the text's script settles alone.
    ScriptLanguage,
    /// `detect_language(text)`: ISO 639-3 language code.
    DetectLanguage,
}

impl TextRule {
    pub const ALL: [TextRule; 8] = [
        Self::Nonblank,
        Self::CanonicalUrl,
        Self::UrlHost,
        Self::RegisteredDomain,
        Self::NormalizeText,
        Self::TextScript,
        Self::ScriptLanguage,
        Self::DetectLanguage,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Nonblank => "nonblank",
            Self::CanonicalUrl => "canonical_url",
            Self::UrlHost => "url_host",
            Self::RegisteredDomain => "registered_domain",
            Self::NormalizeText => "normalize_text",
            Self::TextScript => "text_script",
            Self::ScriptLanguage => "script_language",
            Self::DetectLanguage => "detect_language",
        }
    }

    /// Room for the rule's output over `input`: URLs and texts keep about
    /// their length, the others are short names. (A builder that has to
    /// grow copies everything it holds each time.)
    fn output_bytes(self, input: &dyn Array) -> usize {
        match self {
            Self::Nonblank | Self::CanonicalUrl | Self::NormalizeText => text_bytes(input),
            _ => input.len() * 16,
        }
    }

    fn apply(self, s: &str) -> Option<Cow<'_, str>> {
        match self {
            Self::Nonblank => Some(s.trim_matches(' '))
                .filter(|t| !t.is_empty())
                .map(Cow::Borrowed),
            Self::CanonicalUrl => url::canonical_url(s),
            Self::UrlHost => url::url_host(s).map(Cow::Borrowed),
            Self::RegisteredDomain => url::registered_domain(s).map(Cow::Borrowed),
            Self::NormalizeText => text::normalize_text(s),
            Self::TextScript => lang::text_script(s).map(Cow::Borrowed),
            Self::ScriptLanguage => lang::script_language(s).map(Cow::Borrowed),
            Self::DetectLanguage => lang::detect_language(s).map(Cow::Borrowed),
        }
    }
}

/// A [`TextRule`] as a DataFusion scalar function: any string type in, `Utf8` out,
/// NULL in gives NULL out.
#[derive(Debug, PartialEq, Eq, Hash)]
struct TextRuleUdf {
    rule: TextRule,
    signature: Signature,
}

impl ScalarUDFImpl for TextRuleUdf {
    fn name(&self) -> &str {
        self.rule.name()
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let input = single_arg(self.name(), args)?;
        if let Some(strings) = input.as_string_opt::<i32>() {
            let output = self.apply_unless_unchanged(strings);
            return Ok(ColumnarValue::Array(
                output.map_or(input, |out| Arc::new(out)),
            ));
        }
        let mut out = StringBuilder::with_capacity(input.len(), self.rule.output_bytes(&*input));
        for_each_str(&input, |value| {
            out.append_option(value.and_then(|s| self.rule.apply(s)))
        })?;
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

impl TextRuleUdf {
    /// The rule over `input`, or `None` when it gave back every value as
    /// it was (the same bytes, borrowed): then `input` is the output, not
    /// copied. Why: most batches' URLs have no edge spaces and many
    /// batches' texts are clean, and copying them was ~1-2% of
    /// `preprocess`'s CPU. Values are copied only from the first one the
    /// rule changes, the ones before it in one go.
    fn apply_unless_unchanged(&self, input: &StringArray) -> Option<StringArray> {
        let mut out: Option<StringBuilder> = None;
        for (row, value) in input.iter().enumerate() {
            let result = value.and_then(|s| self.rule.apply(s));
            let out = match &mut out {
                Some(out) => out,
                None if is_unchanged(value, result.as_ref()) => continue,
                None => {
                    let room = self.rule.output_bytes(input);
                    let mut fresh = StringBuilder::with_capacity(input.len(), room);
                    fresh.extend(input.iter().take(row));
                    out.insert(fresh)
                }
            };
            out.append_option(result);
        }
        out.map(|mut out| out.finish())
    }
}

/// Whether a rule's `result` is its input `value` itself: NULL for NULL,
/// or the same bytes borrowed.
fn is_unchanged(value: Option<&str>, result: Option<&Cow<'_, str>>) -> bool {
    match (value, result) {
        (None, None) => true,
        (Some(value), Some(Cow::Borrowed(result))) => {
            std::ptr::eq(value.as_ptr(), result.as_ptr()) && value.len() == result.len()
        }
        _ => false,
    }
}

/// `split_keywords(text)`: the keywords field as a clean `List<Utf8>`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct SplitKeywords {
    signature: Signature,
}

fn keyword_list_type() -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)))
}

impl ScalarUDFImpl for SplitKeywords {
    fn name(&self) -> &str {
        "split_keywords"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(keyword_list_type())
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let input = single_arg(self.name(), args)?;
        let values = StringBuilder::with_capacity(input.len(), text_bytes(&*input));
        let mut out = ListBuilder::with_capacity(values, input.len());
        for_each_str(&input, |value| {
            for keyword in value.map(text::split_keywords).unwrap_or_default() {
                out.values().append_value(keyword);
            }
            // Always a list, empty when there are no keywords: "no keywords"
            // is a fact about the record, not an unknown.
            out.append(true);
        })?;
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

/// `campaign_tags(title, description, domain)`: the `script` and `lang`
/// columns as one struct `{script, lang}` ([`lang::campaign_tags`]).
#[derive(Debug, PartialEq, Eq, Hash)]
struct CampaignTags {
    signature: Signature,
}

impl CampaignTags {
    fn fields() -> Fields {
        Fields::from(vec![
            Field::new("script", DataType::Utf8, true),
            Field::new("lang", DataType::Utf8, true),
        ])
    }
}

impl ScalarUDFImpl for CampaignTags {
    fn name(&self) -> &str {
        "campaign_tags"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Struct(Self::fields()))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let Ok([title, description, domain]) = <[ColumnarValue; 3]>::try_from(args.args) else {
            return exec_err!("`campaign_tags` takes three arguments");
        };
        let (title, description, domain) = (
            title.into_array(rows)?,
            description.into_array(rows)?,
            domain.into_array(rows)?,
        );
        let (title, description, domain) = (
            str_values(&title)?,
            str_values(&description)?,
            str_values(&domain)?,
        );
        let mut script = StringBuilder::with_capacity(rows, rows * 5);
        let mut lang = StringBuilder::with_capacity(rows, rows * 3);
        for ((title, description), domain) in title.into_iter().zip(description).zip(domain) {
            let tags = lang::campaign_tags(title, description, domain);
            script.append_option(tags.script);
            lang.append_option(tags.lang);
        }
        let columns: Vec<ArrayRef> = vec![Arc::new(script.finish()), Arc::new(lang.finish())];
        let tags = StructArray::try_new(Self::fields(), columns, None)?;
        Ok(ColumnarValue::Array(Arc::new(tags)))
    }
}

/// `month_of(created_at)`: the `YYYY-MM` month of a timestamp, the
/// partition key; what `to_char(created_at, '%Y-%m')` gives, without
/// reading the format again for every row (chrono's formatter does: ~1% of
/// `preprocess`'s CPU in `perf`).
#[derive(Debug, PartialEq, Eq, Hash)]
struct MonthOf {
    signature: Signature,
}

impl ScalarUDFImpl for MonthOf {
    fn name(&self) -> &str {
        "month_of"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let input = single_arg(self.name(), args)?;
        if input.data_type() == &DataType::Null {
            return Ok(ColumnarValue::Array(new_null_array(
                &DataType::Utf8,
                input.len(),
            )));
        }
        let Some(micros) = input.as_primitive_opt::<TimestampMicrosecondType>() else {
            return exec_err!("`month_of` takes a timestamp, got `{}`", input.data_type());
        };
        let mut out = StringBuilder::with_capacity(micros.len(), micros.len() * 7);
        for value in micros {
            match value.and_then(chrono::DateTime::from_timestamp_micros) {
                Some(time) => {
                    // `{:04}` is `%Y` for the years of four digits; chrono
                    // writes the others (`+10000`) its own way.
                    let (year, month) = (time.year(), time.month());
                    if (0..=9999).contains(&year) {
                        write!(out, "{year:04}-{month:02}")?;
                    } else {
                        write!(out, "{}", time.format("%Y-%m"))?;
                    }
                    out.append_value("");
                }
                None => out.append_null(),
            }
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

fn single_arg(name: &str, args: ScalarFunctionArgs) -> Result<ArrayRef> {
    let rows = args.number_rows;
    match <[ColumnarValue; 1]>::try_from(args.args) {
        Ok([value]) => value.into_array(rows),
        Err(args) => exec_err!("`{name}` takes one argument, got {}", args.len()),
    }
}

/// The values of a string array of any of Arrow's three string types.
fn str_values(array: &ArrayRef) -> Result<Vec<Option<&str>>> {
    let mut values = Vec::with_capacity(array.len());
    for_each_str(array, |value| values.push(value))?;
    Ok(values)
}

/// Calls `f` with each value of a string array of any of Arrow's three string types.
fn for_each_str<'a>(array: &'a ArrayRef, mut f: impl FnMut(Option<&'a str>)) -> Result<()> {
    match array.data_type() {
        DataType::Utf8 => as_string_array(array)?.iter().for_each(f),
        DataType::LargeUtf8 => as_large_string_array(array)?.iter().for_each(f),
        DataType::Utf8View => as_string_view_array(array)?.iter().for_each(f),
        DataType::Null => (0..array.len()).for_each(|_| f(None)),
        other => return exec_err!("expected a string argument, got `{other}`"),
    }
    Ok(())
}

/// Bytes of text in a string array of any of Arrow's three string types.
fn text_bytes(array: &dyn Array) -> usize {
    match array.data_type() {
        DataType::Utf8 => array.as_string::<i32>().values().len(),
        DataType::LargeUtf8 => array.as_string::<i64>().values().len(),
        DataType::Utf8View => array.as_string_view().total_bytes_len(),
        _ => 0,
    }
}

fn string_signature() -> Signature {
    Signature::one_of(
        vec![
            datafusion::logical_expr::TypeSignature::Exact(vec![DataType::Utf8]),
            datafusion::logical_expr::TypeSignature::Exact(vec![DataType::Utf8View]),
            datafusion::logical_expr::TypeSignature::Exact(vec![DataType::LargeUtf8]),
        ],
        Volatility::Immutable,
    )
}

/// Every adlens UDF, ready to register on a session.
pub fn all() -> Vec<ScalarUDF> {
    let mut udfs: Vec<ScalarUDF> = TextRule::ALL
        .into_iter()
        .map(|rule| {
            ScalarUDF::new_from_impl(TextRuleUdf {
                rule,
                signature: string_signature(),
            })
        })
        .collect();
    udfs.push(ScalarUDF::new_from_impl(SplitKeywords {
        signature: string_signature(),
    }));
    udfs.push(ScalarUDF::new_from_impl(MonthOf {
        signature: Signature::exact(
            vec![DataType::Timestamp(TimeUnit::Microsecond, None)],
            Volatility::Immutable,
        ),
    }));
    udfs.push(ScalarUDF::new_from_impl(CampaignTags {
        signature: Signature::uniform(
            3,
            vec![DataType::Utf8, DataType::Utf8View, DataType::LargeUtf8],
            Volatility::Immutable,
        ),
    }));
    udfs
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Skipping the copy of unchanged values gives the same array as
        /// applying the rule to every value: for batches that change
        /// nothing, change only some values, or change the first.
        #[test]
        fn an_unchanged_batch_is_the_rule_applied_to_each_value(
            values in prop::collection::vec(
                prop::option::of(prop::sample::select(vec!["a", " a", "a b", "a  b", "", " ", "x\t", "é"])),
                0..12,
            ),
        ) {
            let input = StringArray::from(values.clone());
            for rule in [TextRule::Nonblank, TextRule::NormalizeText] {
                let udf = TextRuleUdf { rule, signature: string_signature() };
                let expected: StringArray = values
                    .iter()
                    .map(|value| value.and_then(|s| rule.apply(s)))
                    .collect();
                let output = udf.apply_unless_unchanged(&input).unwrap_or_else(|| input.clone());
                prop_assert_eq!(output, expected);
            }
        }
    }
}
