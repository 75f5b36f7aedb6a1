//! `adlens generate`: synthetic campaign dumps in the exact layout of the
//! real one, at any scale and deterministic for a seed.
//!
//! Each record draws a latent topic (whose share drifts over the year), a
//! language (about 3/4 English), an advertiser domain (Zipf-like popularity
//! within the topic) and text from the topic's words and templates. About a
//! fifth are Facebook-page records behind login redirects and a few percent
//! YouTube videos with boilerplate keywords, as in the real sample. A small,
//! configurable share is dirty on purpose; see [`Dirt`].

mod vocab;

use std::io::Write;

use chrono::{DateTime, NaiveDate};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;

pub use vocab::TOPICS;
use vocab::{DICTIONARY, LANGUAGES, Language, Topic};

/// Topic label of Facebook-page records.
pub const SOCIAL_TOPIC: &str = "social_page";
/// Topic label of YouTube records.
pub const VIDEO_TOPIC: &str = "video";

const FACEBOOK_SHARE: f64 = 0.20;
const YOUTUBE_SHARE: f64 = 0.07;
const DOMAINS_PER_TOPIC: usize = 240;
const FIRST_ID: u64 = 1_700_000_000;

/// The kinds of dirt mixed in at `dirty_rate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dirt {
    /// A field too few or too many.
    Ragged,
    /// An unparseable or impossible timestamp.
    BadTimestamp,
    /// A missing or non-numeric id.
    BadId,
    /// Title, keywords and description all empty.
    EmptyText,
    /// The id of a recent record again, with a newer timestamp.
    Duplicate,
    /// Zero-width, soft-hyphen, BOM or control characters in the title.
    Invisible,
    /// A newline inside the (quoted) description.
    Newline,
}

const DIRT: [Dirt; 7] = [
    Dirt::Ragged,
    Dirt::BadTimestamp,
    Dirt::BadId,
    Dirt::EmptyText,
    Dirt::Duplicate,
    Dirt::Invisible,
    Dirt::Newline,
];

/// What to generate.
#[derive(Debug, Clone)]
pub struct GeneratorConfig {
    pub rows: u64,
    pub seed: u64,
    pub dirty_rate: f64,
}

/// One generated record: its CSV fields (usually six) and hidden topic.
#[derive(Debug, Clone)]
pub struct Record {
    pub fields: Vec<String>,
    pub topic: &'static str,
}

/// Zipf-like sampler over ranks `0..n`.
#[derive(Debug)]
struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    fn new(n: usize, exponent: f64) -> Self {
        let mut acc = 0.0;
        let mut cdf: Vec<f64> = (1..=n)
            .map(|k| {
                acc += 1.0 / (k as f64).powf(exponent);
                acc
            })
            .collect();
        cdf.iter_mut().for_each(|c| *c /= acc);
        Self { cdf }
    }
    fn sample(&self, rng: &mut impl Rng) -> usize {
        let u: f64 = rng.random();
        self.cdf.partition_point(|&c| c < u).min(self.cdf.len() - 1)
    }
}

/// Streams records; see the module docs.
#[derive(Debug)]
pub struct Generator {
    config: GeneratorConfig,
    rng: Pcg64Mcg,
    index: u64,
    start_us: i64,
    step_us: f64,
    /// Per month, the cumulative topic weights.
    topic_cdf: [Vec<f64>; 12],
    /// Per topic, advertiser domain stems by popularity rank.
    stems: Vec<Vec<String>>,
    domain_rank: Zipf,
    recent: Vec<Record>,
}

impl Generator {
    pub fn new(config: GeneratorConfig) -> Self {
        let mut rng = Pcg64Mcg::seed_from_u64(config.seed);
        let stems = TOPICS.iter().map(|t| domain_stems(t, &mut rng)).collect();
        let start = NaiveDate::from_ymd_opt(2023, 1, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .expect("valid date");
        let span_us = 365.0 * 86_400e6;
        Self {
            step_us: span_us / config.rows.max(1) as f64,
            config,
            rng,
            index: 0,
            start_us: start.and_utc().timestamp_micros(),
            topic_cdf: std::array::from_fn(topic_cdf_for_month),
            stems,
            domain_rank: Zipf::new(DOMAINS_PER_TOPIC, 1.1),
            recent: Vec::new(),
        }
    }

    /// The next record, or `None` after `rows` records.
    pub fn next_record(&mut self) -> Option<Record> {
        if self.index >= self.config.rows {
            return None;
        }
        let i = self.index;
        self.index += 1;
        let micros = self.start_us + ((i as f64 + self.rng.random::<f64>()) * self.step_us) as i64;
        let time = DateTime::from_timestamp_micros(micros)
            .expect("2023 is in range")
            .naive_utc();
        let timestamp = format!("{}000", time.format("%Y-%m-%d %H:%M:%S%.3f"));
        let month = (micros - self.start_us) as f64 / (365.0 * 86_400e6) * 12.0;
        let mut record = self.clean_record(timestamp, block_shuffled_id(i), month as usize);
        if self.rng.random_bool(self.config.dirty_rate.clamp(0.0, 1.0)) {
            let dirt = DIRT[self.rng.random_range(0..DIRT.len())];
            record = self.dirty(record, dirt);
        } else if self.recent.len() < 64 {
            self.recent.push(record.clone());
        } else {
            let slot = self.rng.random_range(0..64);
            self.recent[slot] = record.clone();
        }
        Some(record)
    }

    fn clean_record(&mut self, timestamp: String, id: u64, month: usize) -> Record {
        let roll: f64 = self.rng.random();
        let (topic, [url, title, keywords, description]) = if roll < FACEBOOK_SHARE {
            (SOCIAL_TOPIC, self.facebook_page())
        } else if roll < FACEBOOK_SHARE + YOUTUBE_SHARE {
            (VIDEO_TOPIC, self.youtube_video())
        } else {
            let cdf = &self.topic_cdf[month.min(11)];
            let u: f64 = self.rng.random();
            let t = cdf.partition_point(|&c| c < u).min(TOPICS.len() - 1);
            (TOPICS[t].name, self.landing_page(t))
        };
        Record {
            fields: vec![timestamp, id.to_string(), url, title, keywords, description],
            topic,
        }
    }

    fn pick<'a>(&mut self, items: &'a [&'a str]) -> &'a str {
        items[self.rng.random_range(0..items.len())]
    }

    fn language(&mut self) -> &'static Language {
        let u: f64 = self.rng.random();
        let mut acc = 0.0;
        for lang in LANGUAGES {
            acc += lang.share;
            if u < acc {
                return lang;
            }
        }
        &LANGUAGES[0]
    }

    /// A topic word, frequent ones first, in `lang` where the dictionary has it.
    fn word(&mut self, topic: &Topic, lang: &Language) -> String {
        let u: f64 = self.rng.random();
        let english = topic.words[((u * u) * topic.words.len() as f64) as usize];
        translate(english, lang.code).to_string()
    }

    fn landing_page(&mut self, t: usize) -> [String; 4] {
        let topic = &TOPICS[t];
        let lang = self.language();
        let stem = self.stems[t][self.domain_rank.sample(&mut self.rng)].clone();
        let suffix = self.pick(lang.suffixes);
        let brand = brand_name(&stem);
        let native = lang.code != "en" && self.rng.random_bool(0.7);
        let title_template = self.pick_str(topic.titles);
        let description_template = self.pick_str(topic.descriptions);
        let mut title = if native {
            self.native_text(topic, lang, &brand, 4)
        } else {
            self.fill(title_template, topic, lang, &brand)
        };
        let mut description = if native {
            self.native_text(topic, lang, &brand, 9)
        } else {
            self.fill(description_template, topic, lang, &brand)
        };
        self.sprinkle_quirks(&mut title, &mut description);
        let keywords = if self.rng.random_bool(0.25) {
            self.keywords(topic, lang, &brand)
        } else {
            String::new()
        };
        let url = self.landing_url(topic, &stem, suffix);
        [url, title, keywords, description]
    }

    fn pick_str(&mut self, items: &'static [&'static str]) -> &'static str {
        items[self.rng.random_range(0..items.len())]
    }

    /// Fills `{w}`, `{W}`, `{b}`, `{city}` and `{n}` in a template.
    fn fill(&mut self, template: &str, topic: &Topic, lang: &Language, brand: &str) -> String {
        let mut out = String::with_capacity(template.len() + 32);
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let close = rest[open..].find('}').map_or(rest.len(), |c| open + c);
            match &rest[open + 1..close] {
                "w" => out.push_str(&self.word(topic, lang)),
                "W" => out.push_str(&capitalize(&self.word(topic, lang))),
                "b" => out.push_str(brand),
                "city" => out.push_str(self.pick(lang.cities)),
                "n" => out.push_str(&self.rng.random_range(10..99_999).to_string()),
                other => out.push_str(other),
            }
            rest = &rest[(close + 1).min(rest.len())..];
        }
        out.push_str(rest);
        out
    }

    /// Text written in the language itself: topic words, glue and a city.
    fn native_text(&mut self, topic: &Topic, lang: &Language, brand: &str, words: usize) -> String {
        let mut parts: Vec<String> = Vec::with_capacity(words + 2);
        for k in 0..words {
            if k % 2 == 1 {
                parts.push(self.pick(lang.glue).to_string());
            } else {
                parts.push(self.word(topic, lang));
            }
        }
        parts.push(self.pick(lang.cities).to_string());
        let text = capitalize(&parts.join(" "));
        if words < 6 {
            format!("{text} | {brand}")
        } else {
            format!("{text}.")
        }
    }

    fn keywords(&mut self, topic: &Topic, lang: &Language, brand: &str) -> String {
        let n = self.rng.random_range(2..7);
        let mut words: Vec<String> = (0..n).map(|_| self.word(topic, lang)).collect();
        words.push(brand.to_lowercase());
        let sep = if self.rng.random_bool(0.5) { ", " } else { "," };
        let lead = if self.rng.random_bool(0.05) { "," } else { "" };
        format!("{lead}{}", words.join(sep))
    }

    /// The small real-world oddities of clean records.
    fn sprinkle_quirks(&mut self, title: &mut String, description: &mut String) {
        let roll: f64 = self.rng.random();
        if roll < 0.04 {
            title.push(' ');
            title.push_str(self.pick(vocab::EMOJI));
        } else if roll < 0.055 {
            *title = title.replace(" & ", " &amp; ").replace(" | ", " &#124; ");
        } else if roll < 0.085 {
            *title = format!("{title}                      –");
        } else if roll < 0.10 {
            title.push('™');
        } else if roll < 0.13 {
            *description = "-".into();
        } else if roll < 0.15 {
            description.push_str("    Do...");
        }
    }

    fn landing_url(&mut self, topic: &Topic, stem: &str, suffix: &str) -> String {
        let scheme = if self.rng.random_bool(0.95) {
            "https"
        } else {
            "http"
        };
        let www = if self.rng.random_bool(0.6) {
            "www."
        } else {
            ""
        };
        let port = if scheme == "https" && self.rng.random_bool(0.02) {
            ":443"
        } else {
            ""
        };
        let english = &LANGUAGES[0];
        let path_template = self.pick_str(topic.paths);
        let path = self
            .fill(path_template, topic, english, stem)
            .to_lowercase()
            .replace(' ', "-");
        let (path, fragment) = path
            .split_once('#')
            .map_or((path.as_str(), ""), |(p, f)| (p, f));
        let mut url = format!("{scheme}://{www}{stem}.{suffix}{port}{path}");
        let query = self.tracking_query();
        if !query.is_empty() {
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str(&query);
        }
        if !fragment.is_empty() {
            url.push('#');
            url.push_str(fragment);
        }
        let wrap: f64 = self.rng.random();
        if wrap < 0.02 {
            format!(
                "https://l.facebook.com/l.php?u={}&h=AT{}",
                encode(&url),
                self.token(24)
            )
        } else if wrap < 0.025 {
            format!(
                "https://www.google.com/url?q={}&sa=D&source=ads",
                encode(&url)
            )
        } else {
            url
        }
    }

    fn tracking_query(&mut self) -> String {
        let mut params: Vec<String> = Vec::new();
        if self.rng.random_bool(0.1) {
            params.push(format!(
                "variant={}",
                self.rng.random_range(10_000_000_000u64..99_999_999_999)
            ));
        }
        if self.rng.random_bool(0.4) {
            let source = self.pick(&[
                "facebook", "google", "taboola", "rtb", "FB", "fbinsta", "twitter",
            ]);
            params.push(format!(
                "utm_source={source}&utm_medium=cpc&utm_campaign={}",
                self.rng.random_range(1000..99_999)
            ));
        }
        match self.rng.random_range(0..10) {
            0 | 1 => params.push(format!("fbclid=IwAR{}", self.token(59))),
            2 => params.push(format!("gclid=EAIaIQobChMI{}_BwE", self.token(40))),
            3 => params.push(format!("wbraid=CjoKCAjw{}", self.token(60))),
            _ => {}
        }
        params.join("&")
    }

    fn facebook_page(&mut self) -> [String; 4] {
        let name = if self.rng.random_bool(0.6) {
            self.pick(vocab::PAGE_NAMES).to_string()
        } else {
            let topic = &TOPICS[self.rng.random_range(0..TOPICS.len())];
            let lang = self.language();
            format!(
                "{} {}",
                capitalize(&self.word(topic, lang)),
                capitalize(&self.word(topic, lang))
            )
        };
        let profile = format!("100{:012}", self.rng.random_range(0..1_000_000_000_000u64));
        let cft = format!("__cft__%5B0%5D=AZ{}&__tn__=-UC%2CP-R", self.token(180));
        let (url, description) = match self.rng.random_range(0..20) {
            0..=8 => (format!("https://www.facebook.com/login/?next={}&{cft}&_fb_noscript=1", encode(&format!("https://www.facebook.com/profile.php?id={profile}"))), vocab::FB_LOGIN_DESCRIPTION),
            9..=12 => {
                let page = name.replace([' ', '\''], "");
                let inner = format!("https://www.facebook.com/{page}?__cft__[0]=AZ{}&__tn__=-UC,P-R", self.token(120));
                (format!("https://www.facebook.com/login/?next={}&{cft}&_fb_noscript=1", encode(&inner)), vocab::FB_LOGIN_DESCRIPTION)
            }
            13..=17 => ("https://www.facebook.com/login/?next=https%3A%2F%2Fwww.facebook.com%2F&_fb_noscript=1".to_string(), vocab::FB_LOGIN_DESCRIPTION),
            _ => ("https://www.facebook.com/?_fb_noscript=1".to_string(), vocab::FB_HOME_DESCRIPTION),
        };
        [
            url,
            format!("{name} FB page"),
            String::new(),
            description.to_string(),
        ]
    }

    fn youtube_video(&mut self) -> [String; 4] {
        let mut title = self.pick(vocab::VIDEO_TITLES).to_string();
        if self.rng.random_bool(0.3) {
            title.push_str(" #shorts");
        }
        let video = self.token(11);
        let url = if self.rng.random_bool(0.8) {
            format!("https://m.youtube.com/watch?v={video}&feature=youtu.be")
        } else {
            format!(
                "https://m.youtube.com/watch?v={video}&label=video_click_to_advertiser_site&ctype=110&ms=%5BCLICK_MS%5D"
            )
        };
        [
            url,
            format!("{title} - YouTube"),
            vocab::YOUTUBE_KEYWORDS.into(),
            vocab::YOUTUBE_DESCRIPTION.into(),
        ]
    }

    fn token(&mut self, len: usize) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        (0..len)
            .map(|_| ALPHABET[self.rng.random_range(0..ALPHABET.len())] as char)
            .collect()
    }

    fn dirty(&mut self, mut record: Record, dirt: Dirt) -> Record {
        let f = &mut record.fields;
        match dirt {
            Dirt::Ragged => {
                if self.rng.random_bool(0.5) {
                    f.remove(4);
                } else {
                    f.push("extra".into());
                }
            }
            Dirt::BadTimestamp => {
                f[0] = self
                    .pick(&[
                        "2023-13-45 25:61:00",
                        "17/05/2023 20:21",
                        "",
                        "NaT",
                        "1970-01-01 00:00:00",
                    ])
                    .into();
            }
            Dirt::BadId => {
                f[1] = self
                    .pick(&["", "N/A", "17612591O7", "-42", "1.761e9"])
                    .into()
            }
            Dirt::EmptyText => {
                f[3].clear();
                f[4].clear();
                f[5] = if self.rng.random_bool(0.5) {
                    String::new()
                } else {
                    " \u{200B} ".into()
                };
            }
            Dirt::Duplicate => {
                if let Some(earlier) = self
                    .recent
                    .get(self.rng.random_range(0..self.recent.len().max(1)))
                {
                    let timestamp = std::mem::take(&mut f[0]);
                    record = Record {
                        fields: earlier.fields.clone(),
                        topic: earlier.topic,
                    };
                    record.fields[0] = timestamp;
                }
            }
            Dirt::Invisible => {
                let junk = self.pick(&["\u{200B}", "\u{00AD}", "\u{FEFF}", "\u{0007}", "\u{200D}"]);
                let at = f[3]
                    .char_indices()
                    .nth(f[3].chars().count() / 2)
                    .map_or(0, |(i, _)| i);
                f[3].insert_str(at, junk);
            }
            Dirt::Newline => f[5] = format!("{}\n{}\r\n", f[5], f[3]),
        }
        record
    }
}

fn topic_cdf_for_month(month: usize) -> Vec<f64> {
    let m = month as f64 + 0.5;
    let mut acc = 0.0;
    let mut cdf: Vec<f64> = TOPICS
        .iter()
        .map(|t| {
            let phase = std::f64::consts::TAU * (m - t.peak_month) / 12.0;
            acc += t.weight * (1.0 + t.seasonality * phase.cos());
            acc
        })
        .collect();
    cdf.iter_mut().for_each(|c| *c /= acc);
    cdf
}

/// The topic's named brands first, then a long tail of made-up ones in the
/// shapes of the dump (`recliner-chairs-91869`, `shoesfootwear`).
fn domain_stems(topic: &Topic, rng: &mut Pcg64Mcg) -> Vec<String> {
    let mut stems: Vec<String> = topic.brands.iter().map(|b| b.to_string()).collect();
    while stems.len() < DOMAINS_PER_TOPIC {
        let a = topic.words[rng.random_range(0..topic.words.len())].replace(' ', "");
        let b = topic.words[rng.random_range(0..topic.words.len())].replace(' ', "");
        let stem = match rng.random_range(0..3) {
            0 => format!("{a}-{b}-{}", rng.random_range(10_000..99_999)),
            1 => format!("{a}{b}"),
            _ => format!(
                "the{a}{}",
                ["shop", "store", "hub", "co", "online"][rng.random_range(0..5)]
            ),
        };
        if !stems.contains(&stem) {
            stems.push(stem);
        }
    }
    stems
}

/// Ids rise with time but are shuffled within blocks of 64, like the dump's.
fn block_shuffled_id(i: u64) -> u64 {
    FIRST_ID + (i & !63) + ((i & 63) * 37 % 64)
}

fn translate<'a>(english: &'a str, lang: &str) -> &'a str {
    let Some(column) = vocab::dictionary_column(lang) else {
        return english;
    };
    DICTIONARY
        .iter()
        .find(|(en, _)| *en == english)
        .map_or(english, |(_, t)| t[column])
}

fn brand_name(stem: &str) -> String {
    stem.split('-')
        .filter(|p| !p.chars().all(|c| c.is_ascii_digit()))
        .map(capitalize)
        .collect::<Vec<_>>()
        .join(" ")
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map_or_else(String::new, |c| c.to_uppercase().chain(chars).collect())
}

/// What JavaScript's `encodeURIComponent` escapes, as the dump's wrapped URLs show.
const URI_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

fn encode(s: &str) -> String {
    utf8_percent_encode(s, URI_COMPONENT).to_string()
}

/// Writes `config.rows` records as CSV to `out` (and `id,topic` lines to
/// `truth`), calling `tick` every 64Ki records with the count so far.
pub fn write_dump(
    config: GeneratorConfig,
    out: impl Write,
    truth: Option<&mut dyn Write>,
    mut tick: impl FnMut(u64),
) -> std::io::Result<u64> {
    let mut csv = csv::WriterBuilder::new().flexible(true).from_writer(out);
    csv.write_record(crate::record::RAW_FIELDS)?;
    let mut truth = truth.map(|t| csv::WriterBuilder::new().from_writer(t));
    if let Some(t) = truth.as_mut() {
        t.write_record(["id", "topic"])?;
    }
    let mut generator = Generator::new(config);
    let mut n = 0u64;
    while let Some(record) = generator.next_record() {
        csv.write_record(&record.fields)?;
        if let Some(t) = truth.as_mut() {
            t.write_record([
                record.fields.get(1).map_or("", String::as_str),
                record.topic,
            ])?;
        }
        n += 1;
        if n.is_multiple_of(65_536) {
            tick(n);
        }
    }
    csv.flush()?;
    if let Some(t) = truth.as_mut() {
        t.flush()?;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generate(rows: u64, seed: u64, dirty_rate: f64) -> Vec<u8> {
        let mut out = Vec::new();
        write_dump(
            GeneratorConfig {
                rows,
                seed,
                dirty_rate,
            },
            &mut out,
            None,
            |_| {},
        )
        .expect("in memory");
        out
    }

    #[test]
    fn is_deterministic_for_a_seed() {
        assert_eq!(generate(500, 7, 0.05), generate(500, 7, 0.05));
        assert_ne!(generate(500, 7, 0.05), generate(500, 8, 0.05));
    }

    #[test]
    fn ids_are_unique_without_dirt() {
        let ids: std::collections::HashSet<u64> = (0..10_000).map(block_shuffled_id).collect();
        assert_eq!(ids.len(), 10_000);
    }

    #[test]
    fn looks_like_the_real_dump() {
        let data = generate(20_000, 1, 0.0);
        let mut reader = csv::Reader::from_reader(data.as_slice());
        let records: Vec<csv::StringRecord> =
            reader.records().map(|r| r.expect("valid csv")).collect();
        assert_eq!(records.len(), 20_000);
        let share = |pred: &dyn Fn(&csv::StringRecord) -> bool| {
            records.iter().filter(|r| pred(r)).count() as f64 / records.len() as f64
        };
        let facebook = share(&|r| r[2].starts_with("https://www.facebook.com/"));
        let youtube = share(&|r| r[4] == *vocab::YOUTUBE_KEYWORDS);
        let empty_keywords = share(&|r| r[4].is_empty());
        let non_ascii = share(&|r| !(r[3].is_ascii() && r[5].is_ascii()));
        assert!((0.17..0.23).contains(&facebook), "facebook {facebook}");
        assert!((0.05..0.09).contains(&youtube), "youtube {youtube}");
        assert!(
            (0.65..0.85).contains(&empty_keywords),
            "empty keywords {empty_keywords}"
        );
        assert!((0.12..0.35).contains(&non_ascii), "non-ascii {non_ascii}");
        assert!(records.iter().all(|r| r[0].starts_with("2023-")));
    }
}
