//! Script and language detection for the `script` and `lang` columns.
//!
//! The script decides wherever it is certain: Devanagari, Han, kana, Hangul,
//! Thai and other scripts written for (nearly) one language of the ad markets
//! name that language directly, with no statistics. Only Latin, Cyrillic and
//! Arabic text, which many languages share, first meets a fast path that
//! answers when two independent signals agree (stop words and whichlang,
//! see [`by_stop_words`]); the rest goes to whatlang's trigram detector,
//! whose answer is kept only when whatlang is confident.
//!
//! whatlang costs ~30 µs per title on this machine whatever the title's
//! length (it compares ~300 profile trigrams per allowed language), which
//! was 77% of `preprocess`. Campaign titles repeat a lot (half of a
//! generated dump's are repeats; real dumps repeat page names and shop
//! titles), so each worker thread remembers the answers for the texts it
//! saw last. Faster detectors alone were measured and not taken: whichlang
//! (0.5 µs) has no confidence score to tell a guess from an answer (on the
//! real sample it called Italian Spanish and Polish German) and no Polish;
//! lingua's low-accuracy mode took 358 µs per title.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};

use unicode_script::{Script, UnicodeScript};

use super::text::truncate_at_char;

/// Share of letters a non-Latin script needs to name a mixed text: Hindi or
/// Chinese titles often carry English words and hashtags, yet they are what a
/// user filtering for non-Latin campaigns is after.
const NON_LATIN_SHARE: f64 = 0.10;

/// The writing system of `s` by its letters (Unicode script names: `Latin`,
/// `Cyrillic`, `Devanagari`, `Han`, `Arabic`, ...): the most used non-Latin
/// script when it has at least a tenth of the letters, else the most used
/// script; `None` when there are no letters.
pub fn text_script(s: &str) -> Option<&'static str> {
    dominant_script(s).map(|script| script.full_name())
}

/// [`text_script`] as the `Script` itself.
fn dominant_script(s: &str) -> Option<Script> {
    let mut counts: Vec<(Script, usize)> = Vec::new();
    let mut letters = 0usize;
    for c in s.chars().filter(|c| c.is_alphabetic()) {
        // ASCII letters are Latin: skip the table lookup for the common case
        // (it was 7% of `preprocess`).
        let script = if c.is_ascii() {
            Script::Latin
        } else {
            c.script()
        };
        if matches!(script, Script::Common | Script::Inherited | Script::Unknown) {
            continue;
        }
        // Japanese kana and Korean hangul mix with Han; count them as what they are.
        letters += 1;
        match counts.iter_mut().find(|(k, _)| *k == script) {
            Some((_, n)) => *n += 1,
            None => counts.push((script, 1)),
        }
    }
    let top = |latin: bool| {
        counts
            .iter()
            .filter(|(k, _)| (*k == Script::Latin) == latin)
            .max_by_key(|(_, n)| *n)
    };
    match top(false) {
        Some((script, n)) if *n as f64 >= NON_LATIN_SHARE * letters as f64 => Some(*script),
        _ => counts
            .iter()
            .max_by_key(|(_, n)| *n)
            .map(|(script, _)| *script),
    }
}

/// The language a script settles by itself, for scripts written for (nearly)
/// one language of the ad markets. Han is Chinese unless kana show it is
/// Japanese; Devanagari is Hindi (Marathi and Nepali share it, but the
/// markets adlens serves write Hindi in it).
fn language_of_script(script: Script, s: &str) -> Option<&'static str> {
    let lang = match script {
        Script::Devanagari => "hin",
        Script::Han if s.chars().any(is_kana) => "jpn",
        Script::Han => "cmn",
        Script::Hiragana | Script::Katakana => "jpn",
        Script::Hangul => "kor",
        Script::Thai => "tha",
        Script::Hebrew => "heb",
        Script::Greek => "ell",
        Script::Georgian => "kat",
        Script::Armenian => "hye",
        Script::Bengali => "ben",
        Script::Tamil => "tam",
        Script::Telugu => "tel",
        Script::Gujarati => "guj",
        Script::Gurmukhi => "pan",
        Script::Kannada => "kan",
        Script::Malayalam => "mal",
        Script::Khmer => "khm",
        Script::Lao => "lao",
        Script::Myanmar => "mya",
        Script::Sinhala => "sin",
        Script::Ethiopic => "amh",
        _ => return None,
    };
    Some(lang)
}

/// The language of `s` when its dominant script settles it alone (see
/// [`text_script`]): a Hindi title with English hashtags is Hindi.
pub fn script_language(s: &str) -> Option<&'static str> {
    language_of_script(dominant_script(s)?, s)
}

fn is_kana(c: char) -> bool {
    matches!(c.script(), Script::Hiragana | Script::Katakana)
}

/// How much text language detection looks at: trigram statistics settle
/// well before this, and the cost grows with the length.
const LANG_SAMPLE_BYTES: usize = 160;

/// The languages language detection chooses from: the big ad markets'.
/// whatlang scores every allowed language's trigram profile for each text, so
/// its cost grows with this list: all of its ~70 languages took 63 µs per
/// campaign title (80% of `preprocess`), these 24 about 25 µs, and the
/// list keeps rare look-alikes (Latin, Esperanto, ...) from being guessed for
/// short English titles.
const LANGUAGES: [whatlang::Lang; 24] = {
    use whatlang::Lang::*;
    [
        Eng, Deu, Spa, Fra, Por, Ita, Nld, Pol, Tur, Ind, Swe, Dan, Ces, Ron, Hun, Vie, Rus, Ukr,
        Ara, Hin, Jpn, Cmn, Kor, Tha,
    ]
};

static DETECTOR: std::sync::LazyLock<whatlang::Detector> =
    std::sync::LazyLock::new(|| whatlang::Detector::with_allowlist(LANGUAGES.to_vec()));

/// The likely language of `s` as an ISO 639-3 code (`eng`, `deu`, `hin`, ...),
/// or `None` when the text is too short or ambiguous to tell.
pub fn detect_language(s: &str) -> Option<&'static str> {
    let script = dominant_script(s)?;
    if let Some(lang) = language_of_script(script, s) {
        return Some(lang);
    }
    if !matches!(script, Script::Latin | Script::Cyrillic | Script::Arabic) {
        return None;
    }
    let sample = truncate_at_char(s, LANG_SAMPLE_BYTES);
    if let Some(lang) = by_stop_words(sample) {
        return Some(lang);
    }
    remembered(sample, |sample| {
        let info = DETECTOR.detect(sample)?;
        (info.confidence() >= MIN_CONFIDENCE).then(|| info.lang().code())
    })
}

/// The languages the fast path can name: those with an NLTK stop-word list
/// that whichlang also knows, as (NLTK code, ISO 639-3 code, whichlang).
const STOP_WORD_LANGUAGES: [(&str, &str, whichlang::Lang); 9] = {
    use whichlang::Lang::*;
    [
        ("en", "eng", Eng),
        ("de", "deu", Deu),
        ("es", "spa", Spa),
        ("fr", "fra", Fra),
        ("pt", "por", Por),
        ("nl", "nld", Nld),
        ("it", "ita", Ita),
        ("tr", "tur", Tur),
        ("sv", "swe", Swe),
    ]
};

/// Each stop word with the languages (bits of [`STOP_WORD_LANGUAGES`]) it
/// belongs to.
static STOP_WORDS: std::sync::LazyLock<HashMap<&'static str, u16>> =
    std::sync::LazyLock::new(|| {
        let mut table: HashMap<&'static str, u16> = HashMap::new();
        for (bit, (code, _, _)) in STOP_WORD_LANGUAGES.iter().enumerate() {
            for word in stop_words::lookup(code).unwrap_or_default() {
                *table.entry(word).or_default() |= 1 << bit;
            }
        }
        table
    });

/// Distinct stop words a language needs, and how many times the runner-up's
/// count, before the fast path answers.
const STOP_WORD_HITS: u32 = 3;
const STOP_WORD_MARGIN: u32 = 2;

/// The fast path, ~2 µs: two independent signals must agree. Function words
/// vote (at least 3 distinct ones of one language, twice as many as any
/// other's), and whichlang's character n-gram model must name the same
/// language. On 100k generated records it answered for 61% of the texts and
/// agreed with a confident whatlang on 98.4% of those; the disagreements
/// read were English texts whatlang called French or Danish (`Tax Guide -
/// Apps on Google Play ... know how to get a ...`). A margin of 3 answered
/// for 47% only. Anything less clear-cut goes to whatlang.
fn by_stop_words(sample: &str) -> Option<&'static str> {
    let mut hits = [0u32; STOP_WORD_LANGUAGES.len()];
    let mut seen: Vec<&'static str> = Vec::new();
    let mut lower = String::new();
    for word in sample
        .split(|c: char| !c.is_alphabetic())
        .filter(|w| !w.is_empty())
    {
        lower.clear();
        lower.extend(word.chars().flat_map(char::to_lowercase));
        let Some((stop, langs)) = STOP_WORDS.get_key_value(lower.as_str()) else {
            continue;
        };
        if seen.contains(stop) {
            continue;
        }
        seen.push(stop);
        for (bit, count) in hits.iter_mut().enumerate() {
            *count += u32::from(langs >> bit & 1);
        }
    }
    let (best, &top) = hits.iter().enumerate().max_by_key(|(_, n)| **n)?;
    let second = hits
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != best)
        .map(|(_, n)| *n)
        .max()
        .unwrap_or(0);
    let (_, code, model) = STOP_WORD_LANGUAGES[best];
    (top >= STOP_WORD_HITS
        && top >= STOP_WORD_MARGIN * second.max(1)
        && whichlang::detect_language(sample) == model)
        .then_some(code)
}

/// whatlang's confidence below which an answer is a guess. 0.5 let short
/// English headlines through as Spanish (`'Starbucks racism' fame led to DEI
/// project. It was canceled - Los Angeles Times`: 0.58).
const MIN_CONFIDENCE: f64 = 0.6;

/// Answers a worker thread remembers before it starts over: ~40 bytes each.
const REMEMBERED: usize = 1 << 16;

thread_local! {
    /// Detected language by a 64-bit hash of the sample (a collision between
    /// two titles is a ~1e-10 chance per pair the cache holds).
    static SEEN: RefCell<HashMap<u64, Option<&'static str>>> = RefCell::new(HashMap::new());
}

/// `detect(sample)`, or the answer this thread gave for the same sample.
fn remembered(
    sample: &str,
    detect: impl FnOnce(&str) -> Option<&'static str>,
) -> Option<&'static str> {
    let key = BuildHasherDefault::<DefaultHasher>::default().hash_one(sample);
    if let Some(known) = SEEN.with_borrow(|seen| seen.get(&key).copied()) {
        return known;
    }
    let lang = detect(sample);
    SEEN.with_borrow_mut(|seen| {
        if seen.len() >= REMEMBERED {
            seen.clear();
        }
        seen.insert(key, lang);
    });
    lang
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_scripts_and_languages() {
        assert_eq!(
            text_script(
                "भागो पापा भागो 😂 ~ mini wood toy-woodworking art skill wood / hand crafts / #shorts - YouTube"
            ),
            Some("Devanagari")
        );
        assert_eq!(text_script("5月17日AI 智能選股 技嘉 欣興"), Some("Han"));
        assert_eq!(text_script("Sale! Москва"), Some("Cyrillic"));
        assert_eq!(
            text_script("Grijs adidas Originals SS Track Pants Junior - JD Sports"),
            Some("Latin")
        );
        assert_eq!(text_script("Kitab Tamadun Korea"), Some("Latin"));
        assert_eq!(text_script("12345 !!"), None);
        assert_eq!(
            detect_language(
                "Wij zoeken jou. Een mens dat lacht, soms foutjes maakt, en zin heeft in een nieuwe baan als Chauffeur"
            ),
            Some("nld")
        );
        assert_eq!(
            detect_language(
                "Spend your summer holiday in the diverse region of Dalmatia in Croatia and enjoy spectacular creeks"
            ),
            Some("eng")
        );
        assert_eq!(
            detect_language(
                "Sukienka z dresowej dzianiny, szary, dostępna w naszym sklepie internetowym"
            ),
            Some("pol")
        );
    }

    #[test]
    fn a_script_settles_the_language_where_it_can() {
        let hindi = "भागो पापा भागो 😂 ~ mini wood toy-woodworking art skill wood / hand crafts / #shorts - YouTube";
        assert_eq!(script_language(hindi), Some("hin"));
        assert_eq!(detect_language(hindi), Some("hin"));
        assert_eq!(script_language("5月17日AI 智能選股 技嘉 欣興"), Some("cmn"));
        assert_eq!(script_language("東京のホテル 予約"), Some("jpn"));
        assert_eq!(script_language("서울 호텔 할인"), Some("kor"));
        assert_eq!(script_language("โรงแรม กรุงเทพ"), Some("tha"));
        assert_eq!(script_language("Sale! Москва"), None, "Cyrillic is shared");
        assert_eq!(script_language("Summer sale"), None);
        assert_eq!(script_language("12345 !!"), None);
    }

    #[test]
    fn a_repeated_text_gets_the_same_answer() {
        let text = "Encuentra lo mejor de Nike. Obtén la innovación que estas buscando";
        let first = detect_language(text);
        assert_eq!(first, Some("spa"));
        assert_eq!(detect_language(text), first);
    }
}
