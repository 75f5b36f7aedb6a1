//! Campaign feature vectors for clustering.
//!
//! Tokens come from the cleaned title, keywords and description (Unicode word
//! boundaries, lower-cased, stop words of the main languages dropped, numbers
//! and emoji dropped, Han/kana runs as characters plus bigrams since they are
//! written without spaces) and from the URL (`d:` registered domain, `h:`
//! host, `p:` path words). Each token is hashed with 64-bit FNV-1a into
//! `dim` buckets, weighted by its field, scaled by IDF (fitted on the training
//! sample, stored with the model) and the vector is L2-normalised.
//!
//! Everything here is documented well enough to recompute in Python.

use std::collections::HashMap;
use std::sync::LazyLock;

use arrow::array::{Array, AsArray, ListArray, RecordBatch, StringArray};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use serde::{Deserialize, Serialize};
use unicode_script::{Script, UnicodeScript};
use unicode_segmentation::UnicodeSegmentation;

/// The columns of `campaigns` that features are made from.
pub const FEATURE_COLUMNS: [&str; 6] =
    ["title", "keywords", "description", "domain", "host", "url"];

/// How vectors are made; stored in every model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureParams {
    /// Number of hash buckets (vector dimension).
    pub dim: usize,
    pub title_weight: f32,
    pub keywords_weight: f32,
    pub description_weight: f32,
    pub domain_weight: f32,
    pub host_weight: f32,
    pub path_weight: f32,
    /// The hash: 64-bit FNV-1a of the token's UTF-8 bytes, modulo `dim`.
    pub hash: String,
}

impl Default for FeatureParams {
    fn default() -> Self {
        Self {
            dim: 2048,
            title_weight: 1.0,
            keywords_weight: 0.5,
            description_weight: 0.5,
            domain_weight: 1.0,
            host_weight: 0.5,
            path_weight: 0.5,
            hash: "fnv1a64".into(),
        }
    }
}

/// 64-bit FNV-1a.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// NLTK's stop words of the ad markets' languages. Not Polish or Hindi:
/// NLTK has no list for them, and stopwords-iso's (compiled in for language
/// detection) hold words that are content in English titles (`one`).
static STOP_WORDS: LazyLock<foldhash::HashSet<&'static str>> = LazyLock::new(|| {
    [
        "en", "de", "es", "fr", "pt", "nl", "it", "tr", "id", "ru", "ar",
    ]
    .iter()
    .filter_map(|lang| stop_words::lookup(lang))
    .flatten()
    .copied()
    .collect()
});

fn is_cjk(c: char) -> bool {
    // ASCII first: most words are, and the script table lookup per word
    // showed in the stream's profile.
    !c.is_ascii()
        && matches!(
            c.script(),
            Script::Han | Script::Hiragana | Script::Katakana
        )
}

/// Calls `emit` with each token of a text field (see the module docs).
pub fn text_tokens(text: &str, mut emit: impl FnMut(&str)) {
    let mut run = String::new();
    let mut lower_buf = String::new();
    let flush = |run: &mut String, emit: &mut dyn FnMut(&str)| {
        let chars: Vec<char> = run.chars().collect();
        let mut buf = [0u8; 8];
        for (i, c) in chars.iter().enumerate() {
            emit(c.encode_utf8(&mut buf));
            if let Some(next) = chars.get(i + 1) {
                emit(&format!("{c}{next}"));
            }
        }
        run.clear();
    };
    for word in text.unicode_words() {
        if word.chars().all(is_cjk) {
            run.push_str(word);
            continue;
        }
        flush(&mut run, &mut emit);
        let lower = lower_case(word, &mut lower_buf);
        let useful = has_chars(lower, 2)
            && !lower
                .chars()
                .all(|c| c.is_ascii_digit() || c == '.' || c == ',')
            && !STOP_WORDS.contains(lower);
        if useful {
            emit(lower);
        }
    }
    flush(&mut run, &mut emit);
}

/// `word.to_lowercase()`, written into `buf` when `word` is ASCII: most
/// words are. With [`prefixed`], this took 7% off `adlens score` (a
/// `String` per word and per URL token before).
fn lower_case<'a>(word: &str, buf: &'a mut String) -> &'a str {
    buf.clear();
    if word.is_ascii() {
        buf.push_str(word);
        buf.make_ascii_lowercase();
    } else {
        // Not char by char: a final `Σ` lower-cases to `ς` only here.
        buf.push_str(&word.to_lowercase());
    }
    buf
}

/// Whether `s` has at least `n` (> 0) characters, counting no further.
fn has_chars(s: &str, n: usize) -> bool {
    s.chars().nth(n - 1).is_some()
}

/// Path words of a URL: letters-only pieces of three or more characters.
fn path_tokens(url: &str, mut emit: impl FnMut(&str)) {
    let after_host = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = after_host.find('/').map_or("", |i| &after_host[i..]);
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let mut buf = String::new();
    for piece in path.split(|c: char| !c.is_alphanumeric()) {
        if has_chars(piece, 3)
            && piece.chars().any(char::is_alphabetic)
            && !piece.chars().any(|c| c.is_ascii_digit())
        {
            let lower = lower_case(piece, &mut buf);
            if !STOP_WORDS.contains(lower) {
                emit(lower);
            }
        }
    }
}

/// The text of one campaign that features are made from.
#[derive(Debug, Default, Clone)]
pub struct CampaignText<'a> {
    pub title: Option<&'a str>,
    pub keywords: Vec<&'a str>,
    pub description: Option<&'a str>,
    pub domain: Option<&'a str>,
    pub host: Option<&'a str>,
    pub url: Option<&'a str>,
}

/// A sparse vector: sorted, unique bucket indices and their values.
pub type SparseVec = Vec<(u32, f32)>;

impl CampaignText<'_> {
    /// Calls `emit(token, weight)` for every weighted token of the campaign.
    pub fn for_each_token(&self, params: &FeatureParams, mut emit: impl FnMut(&str, f32)) {
        if let Some(t) = self.title {
            text_tokens(t, |tok| emit(tok, params.title_weight));
        }
        for k in &self.keywords {
            text_tokens(k, |tok| emit(tok, params.keywords_weight));
        }
        if let Some(d) = self.description {
            text_tokens(d, |tok| emit(tok, params.description_weight));
        }
        let mut buf = String::new();
        if let Some(d) = self.domain {
            emit(prefixed(&mut buf, "d:", d), params.domain_weight);
        }
        if let Some(h) = self.host {
            emit(prefixed(&mut buf, "h:", h), params.host_weight);
        }
        if let Some(u) = self.url {
            path_tokens(u, |tok| {
                emit(prefixed(&mut buf, "p:", tok), params.path_weight);
            });
        }
    }

    /// Weighted term frequencies by bucket.
    pub fn term_frequencies(&self, params: &FeatureParams) -> SparseVec {
        // A campaign has tens of tokens: sorting them and merging equal
        // buckets is cheaper than hashing into a map (it was 5% of the stream).
        let mut v: SparseVec = Vec::new();
        self.for_each_token(params, |tok, w| v.push((bucket(tok, params.dim), w)));
        v.sort_by_key(|(i, _)| *i);
        v.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                kept.1 += later.1;
            }
            same
        });
        v
    }
}

/// `prefix` and `token` as one token, in `buf`.
fn prefixed<'a>(buf: &'a mut String, prefix: &str, token: &str) -> &'a str {
    buf.clear();
    buf.push_str(prefix);
    buf.push_str(token);
    buf
}

/// The bucket of a token.
pub fn bucket(token: &str, dim: usize) -> u32 {
    (fnv1a64(token.as_bytes()) % dim as u64) as u32
}

/// Document frequencies and the most frequent token of every bucket,
/// gathered over the training sample.
#[derive(Debug)]
pub struct IdfFitter {
    params: FeatureParams,
    docs: u64,
    df: Vec<u64>,
    token_counts: HashMap<String, u64>,
}

impl IdfFitter {
    pub fn new(params: &FeatureParams) -> Self {
        Self {
            params: params.clone(),
            docs: 0,
            df: vec![0; params.dim],
            token_counts: HashMap::new(),
        }
    }

    /// Counts one document; returns its term frequencies.
    pub fn add(&mut self, text: &CampaignText<'_>) -> SparseVec {
        let tf = text.term_frequencies(&self.params);
        self.docs += 1;
        for (i, _) in &tf {
            self.df[*i as usize] += 1;
        }
        text.for_each_token(&self.params, |tok, _| {
            if let Some(n) = self.token_counts.get_mut(tok) {
                *n += 1;
            } else {
                self.token_counts.insert(tok.to_string(), 1);
            }
        });
        tf
    }

    /// Smoothed IDF, `ln((1 + n) / (1 + df)) + 1` as scikit-learn computes it,
    /// and each bucket's most frequent token (its label in cluster summaries).
    pub fn finish(self) -> Vectorizer {
        let n = self.docs as f32;
        let idf = self
            .df
            .iter()
            .map(|&df| ((1.0 + n) / (1.0 + df as f32)).ln() + 1.0)
            .collect();
        let mut best: Vec<(u64, String)> = vec![(0, String::new()); self.params.dim];
        for (token, count) in self.token_counts {
            let slot = &mut best[bucket(&token, self.params.dim) as usize];
            if count > slot.0 || (count == slot.0 && token < slot.1) {
                *slot = (count, token);
            }
        }
        Vectorizer {
            params: self.params,
            idf,
            terms: best.into_iter().map(|(_, t)| t).collect(),
        }
    }
}

/// Turns campaigns into unit-length TF-IDF vectors.
#[derive(Debug, Clone, PartialEq)]
pub struct Vectorizer {
    pub params: FeatureParams,
    pub idf: Vec<f32>,
    /// Most frequent training token per bucket ("" when none).
    pub terms: Vec<String>,
}

impl Vectorizer {
    /// TF-IDF, L2-normalised, from term frequencies.
    pub fn weigh(&self, mut tf: SparseVec) -> SparseVec {
        for (i, v) in &mut tf {
            *v *= self.idf[*i as usize];
        }
        let norm = tf.iter().map(|(_, v)| v * v).sum::<f32>().sqrt();
        if norm > 0.0 {
            tf.iter_mut().for_each(|(_, v)| *v /= norm);
        }
        tf
    }

    pub fn vector(&self, text: &CampaignText<'_>) -> SparseVec {
        self.weigh(text.term_frequencies(&self.params))
    }
}

/// A text column of `batch` as `Utf8`, whatever string type it came in.
pub fn string_column(
    batch: &RecordBatch,
    name: &str,
) -> Result<StringArray, arrow::error::ArrowError> {
    let column = batch
        .column_by_name(name)
        .ok_or_else(|| arrow::error::ArrowError::SchemaError(format!("no column `{name}`")))?;
    Ok(cast(column, &DataType::Utf8)?.as_string::<i32>().clone())
}

/// The feature columns of a `campaigns` batch, ready to be read row by row.
#[derive(Debug)]
pub struct TextColumns {
    strings: [StringArray; 5],
    keywords: Option<ListArray>,
}

impl TextColumns {
    /// Reads the feature columns of `batch` (any string flavour).
    pub fn new(batch: &RecordBatch) -> Result<Self, arrow::error::ArrowError> {
        let string = |name: &str| string_column(batch, name);
        let keywords = match batch.column_by_name("keywords") {
            Some(k) => Some(
                cast(
                    k,
                    &DataType::List(std::sync::Arc::new(arrow::datatypes::Field::new(
                        "item",
                        DataType::Utf8,
                        true,
                    ))),
                )?
                .as_list::<i32>()
                .clone(),
            ),
            None => None,
        };
        Ok(Self {
            strings: [
                string("title")?,
                string("description")?,
                string("domain")?,
                string("host")?,
                string("url")?,
            ],
            keywords,
        })
    }

    /// Row `i` as [`CampaignText`].
    pub fn row(&self, i: usize) -> CampaignText<'_> {
        fn get(a: &StringArray, i: usize) -> Option<&str> {
            a.is_valid(i).then(|| a.value(i))
        }
        let keywords = self
            .keywords
            .as_ref()
            .filter(|k| k.is_valid(i))
            .map(|k| {
                let values = k.values().as_string::<i32>();
                let (start, end) = (
                    k.value_offsets()[i] as usize,
                    k.value_offsets()[i + 1] as usize,
                );
                (start..end)
                    .filter(|j| values.is_valid(*j))
                    .map(|j| values.value(j))
                    .collect()
            })
            .unwrap_or_default();
        let [title, description, domain, host, url] = &self.strings;
        CampaignText {
            title: get(title, i),
            keywords,
            description: get(description, i),
            domain: get(domain, i),
            host: get(host, i),
            url: get(url, i),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn tokens(text: &str) -> Vec<String> {
        let mut out = Vec::new();
        text_tokens(text, |t| out.push(t.to_string()));
        out
    }

    /// The words of `text` as the tokenizer took them before it lower-cased
    /// into a buffer: `to_lowercase` and a character count per word.
    fn words_with_to_lowercase(text: &str) -> Vec<String> {
        text.unicode_words()
            .filter(|word| !word.chars().all(is_cjk))
            .map(str::to_lowercase)
            .filter(|lower| {
                lower.chars().count() >= 2
                    && !lower
                        .chars()
                        .all(|c| c.is_ascii_digit() || c == '.' || c == ',')
                    && !STOP_WORDS.contains(lower.as_str())
            })
            .collect()
    }

    #[test]
    fn words_lower_case_as_to_lowercase_does() {
        // A final capital sigma lower-cases to `ς` only in a whole word;
        // `İ` grows a combining dot.
        for text in [
            "ΟΔΟΣ ΣΟΦΟΣ",
            "İstanbul İZMİR",
            "Straße STRASSE",
            "ÉTÉ Été",
            "ǅemal",
        ] {
            assert_eq!(tokens(text), words_with_to_lowercase(text), "{text}");
        }
        assert_eq!(tokens("ΟΔΟΣ"), ["οδος"]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Lower-casing into a buffer (ASCII in place, the rest by
        /// `to_lowercase`, final sigma included) keeps the tokens and the
        /// prefixed URL tokens what they were.
        #[test]
        fn buffered_lower_casing_keeps_the_tokens(
            text in "([A-Za-zÀ-ɏΣσςΑ-ω İı0-9.,' -]|\\PC){0,40}",
        ) {
            let kept: Vec<String> = tokens(&text)
                .into_iter()
                .filter(|t| !t.chars().all(is_cjk))
                .collect();
            prop_assert_eq!(kept, words_with_to_lowercase(&text));
            let url = format!("https://shop.example/{}", text.replace(' ', "/"));
            let mut paths = Vec::new();
            path_tokens(&url, |t| paths.push(t.to_string()));
            let text = CampaignText { url: Some(&url), domain: Some("example"), ..Default::default() };
            let mut prefixed_tokens = Vec::new();
            text.for_each_token(&FeatureParams::default(), |t, _| prefixed_tokens.push(t.to_string()));
            let mut expected = vec!["d:example".to_string()];
            expected.extend(paths.iter().map(|p| format!("p:{p}")));
            prop_assert_eq!(prefixed_tokens, expected);
        }
    }

    #[test]
    fn tokenises_every_script() {
        assert_eq!(
            tokens("The Summer Holiday in Dalmatia 2023!"),
            ["summer", "holiday", "dalmatia"]
        );
        assert_eq!(
            tokens("भागो पापा भागो 😂 wood"),
            ["भागो", "पापा", "भागो", "wood"]
        );
        assert_eq!(
            tokens("智能選股"),
            ["智", "智能", "能", "能選", "選", "選股", "股"]
        );
        assert_eq!(tokens("Москва и отель"), ["москва", "отель"]);
        assert_eq!(tokens("فندق في دبي"), ["فندق", "دبي"]);
        assert_eq!(
            tokens("Wij zoeken een mens dat lacht"),
            ["wij", "zoeken", "mens", "lacht"]
        );
    }

    #[test]
    fn url_words_are_prefixed_and_filtered() {
        let text = CampaignText {
            domain: Some("hottopic.com"),
            host: Some("www.hottopic.com"),
            url: Some("https://www.hottopic.com/product/one-piece-luffy/20400725.html?x=hats"),
            ..CampaignText::default()
        };
        let mut out = Vec::new();
        text.for_each_token(&FeatureParams::default(), |t, _| out.push(t.to_string()));
        assert_eq!(
            out,
            [
                "d:hottopic.com",
                "h:www.hottopic.com",
                "p:product",
                "p:one",
                "p:piece",
                "p:luffy",
                "p:html"
            ]
        );
    }

    #[test]
    fn vectors_are_unit_length_and_idf_weighted() {
        let params = FeatureParams {
            dim: 1024, // at 64, `hotel` and `luffy` collide (both bucket 29)
            ..FeatureParams::default()
        };
        let mut fitter = IdfFitter::new(&params);
        let common = CampaignText {
            title: Some("hotel deals"),
            ..CampaignText::default()
        };
        let rare = CampaignText {
            title: Some("hotel luffy"),
            ..CampaignText::default()
        };
        for _ in 0..9 {
            fitter.add(&common);
        }
        fitter.add(&rare);
        let vectorizer = fitter.finish();
        let v = vectorizer.vector(&rare);
        let norm: f32 = v.iter().map(|(_, x)| x * x).sum();
        assert!((norm - 1.0).abs() < 1e-5);
        let weight = |tok: &str| {
            v.iter()
                .find(|(i, _)| *i == bucket(tok, 1024))
                .map(|(_, x)| *x)
                .unwrap()
        };
        assert!(
            weight("luffy") > weight("hotel"),
            "the rare token weighs more"
        );
        assert_eq!(vectorizer.terms[bucket("hotel", 1024) as usize], "hotel");
        assert_eq!((bucket("hotel", 64), bucket("luffy", 64)), (29, 29));
    }

    #[test]
    fn fnv_matches_the_reference() {
        assert_eq!(fnv1a64(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
    }
}
