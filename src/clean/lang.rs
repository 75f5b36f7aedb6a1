//! Script and language detection for the `script` and `lang` columns.
//!
//! The script decides wherever it is certain: Devanagari, Han, kana, Hangul,
//! Thai and other scripts written for (nearly) one language of the ad markets
//! name that language directly, with no statistics. Latin, Cyrillic and
//! Arabic text, which many languages share, is named by its stop words when
//! one language has a clear majority of them, else when two independent
//! fast signals agree: the language with the most distinct stop words, and
//! whichlang's character n-gram model (see [`StopWordVotes::settled`]).
//! whatlang's trigram detector, kept only when it is confident, reads just
//! the texts the two left open that still show some evidence (see
//! [`needs_trigrams`]). Anything else stays NULL rather than guessed.
//!
//! Why: whatlang costs 30-60 µs per text on this machine whatever the
//! text's length (it compares ~300 profile trigrams per allowed language);
//! reading every text it was 77% of `preprocess`, and 40% still when it read
//! the 39% of texts an earlier, stricter fast path left. The fast path costs
//! ~2-3 µs. whatlang's answers themselves now come from an inverted index
//! over its own profiles ([`super::trigrams`]: the same language and
//! confidence, ~10x cheaper; it went from 15% of `preprocess`'s CPU to under
//! 2%). Faster detectors alone were measured and not taken: whichlang
//! (0.5-2 µs) has no confidence score to tell a guess from an answer (on the
//! real sample it called Italian Spanish and Polish German) and no Polish;
//! lingua's low-accuracy mode took 358 µs per title.

use std::borrow::Cow;
use std::cell::RefCell;
use std::hash::BuildHasher;

use smallvec::SmallVec;
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
    ScriptTally::of(s).dominant()
}

/// The letters of each script in a text, what its dominant script is
/// decided from. Tallies add up: the tally of `a b` is `a`'s plus `b`'s, so
/// a campaign's title is read once whether it is judged alone or with its
/// description.
#[derive(Debug, Clone, Default)]
struct ScriptTally {
    /// Inline for the few scripts a text has: a heap `Vec` here was two
    /// allocations per campaign.
    counts: SmallVec<[(Script, usize); 4]>,
    letters: usize,
}

impl ScriptTally {
    fn of(s: &str) -> Self {
        let mut tally = Self::default();
        // Most texts are plain ASCII: one vectorised pass settles them as
        // Latin (or letterless) without a per-character Unicode lookup.
        if s.is_ascii() {
            let latin = s.bytes().filter(u8::is_ascii_alphabetic).count();
            tally.add_letters(Script::Latin, latin);
            return tally;
        }
        for c in s.chars().filter(|c| c.is_alphabetic()) {
            // ASCII letters are Latin: skip the table lookup for the common
            // case (it was 7% of `preprocess`).
            let script = if c.is_ascii() {
                Script::Latin
            } else {
                c.script()
            };
            if matches!(script, Script::Common | Script::Inherited | Script::Unknown) {
                continue;
            }
            // Japanese kana and Korean hangul mix with Han; count them as what they are.
            tally.add_letters(script, 1);
        }
        tally
    }

    fn add_letters(&mut self, script: Script, n: usize) {
        if n == 0 {
            return;
        }
        self.letters += n;
        match self.counts.iter_mut().find(|(k, _)| *k == script) {
            Some((_, count)) => *count += n,
            None => self.counts.push((script, n)),
        }
    }

    fn add(&mut self, other: &Self) {
        for (script, n) in &other.counts {
            self.add_letters(*script, *n);
        }
    }

    fn dominant(&self) -> Option<Script> {
        let top = |latin: bool| {
            self.counts
                .iter()
                .filter(|(k, _)| (*k == Script::Latin) == latin)
                .max_by_key(|(_, n)| *n)
        };
        match top(false) {
            Some((script, n)) if *n as f64 >= NON_LATIN_SHARE * self.letters as f64 => {
                Some(*script)
            }
            _ => self
                .counts
                .iter()
                .max_by_key(|(_, n)| *n)
                .map(|(script, _)| *script),
        }
    }
}

/// The language a script settles by itself, for scripts written for (nearly)
/// one language of the ad markets. Han is Chinese unless kana show it is
/// Japanese; Devanagari is Hindi (Marathi and Nepali share it, but the
/// markets adlens serves write Hindi in it). `parts` are the text's pieces
/// (a title and its description), read as one text.
fn language_of_script(script: Script, parts: &[&str]) -> Option<&'static str> {
    let lang = match script {
        Script::Devanagari => "hin",
        Script::Han if parts.iter().any(|s| s.chars().any(is_kana)) => "jpn",
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
    language_of_script(dominant_script(s)?, &[s])
}

fn is_kana(c: char) -> bool {
    matches!(c.script(), Script::Hiragana | Script::Katakana)
}

/// How much text language detection looks at: the signals settle well
/// before this, and whatlang's cost grows with the length.
const LANG_SAMPLE_BYTES: usize = 160;

/// The languages whatlang chooses from, when it is asked at all (see
/// [`needs_trigrams`]): the big ad markets'. The list keeps rare look-alikes
/// (Latin, Esperanto, ...) from being guessed for short English titles.
pub(super) const LANGUAGES: [whatlang::Lang; 24] = {
    use whatlang::Lang::*;
    [
        Eng, Deu, Spa, Fra, Por, Ita, Nld, Pol, Tur, Ind, Swe, Dan, Ces, Ron, Hun, Vie, Rus, Ukr,
        Ara, Hin, Jpn, Cmn, Kor, Tha,
    ]
};

/// whatlang's detector over [`LANGUAGES`], computed through an inverted index
/// ([`super::trigrams`]: the same answers, ~10x cheaper).
static DETECTOR: std::sync::LazyLock<super::trigrams::Detector> =
    std::sync::LazyLock::new(|| super::trigrams::Detector::with_allowlist(&LANGUAGES));

/// The likely language of `s` as an ISO 639-3 code (`eng`, `deu`, `hin`, ...),
/// or `None` when the text is too short or ambiguous to tell.
pub fn detect_language(s: &str) -> Option<&'static str> {
    detect_in_script(&[s], dominant_script(s)?)
}

/// [`detect_language`] of `parts` joined by spaces, whose dominant script
/// is `script`.
fn detect_in_script(parts: &[&str], script: Script) -> Option<&'static str> {
    if let Some(lang) = language_of_script(script, parts) {
        return Some(lang);
    }
    if !matches!(script, Script::Latin | Script::Cyrillic | Script::Arabic) {
        return None;
    }
    let sample = sample_of(parts);
    let votes = StopWordVotes::count(&sample);
    if let Some(lang) = votes.settled(&sample) {
        return Some(lang);
    }
    if !needs_trigrams(&votes, &sample) {
        return None;
    }
    remembered(&sample, |sample| {
        let (lang, confidence) = DETECTOR.detect(sample)?;
        (confidence >= MIN_CONFIDENCE).then(|| lang.code())
    })
}

/// The first [`LANG_SAMPLE_BYTES`] of `parts` joined by spaces (cut at a
/// character boundary), copying no more than that: a long description is
/// never joined whole only to be cut.
fn sample_of<'a>(parts: &[&'a str]) -> Cow<'a, str> {
    let mut sample = Cow::Borrowed("");
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            if sample.len() >= LANG_SAMPLE_BYTES {
                break;
            }
            if let Cow::Borrowed(first) = sample {
                // One allocation for the whole sample, not one per growth.
                let mut joined = String::with_capacity(LANG_SAMPLE_BYTES + 1);
                joined.push_str(first);
                sample = Cow::Owned(joined);
            }
            sample.to_mut().push(' ');
        }
        let piece = truncate_at_char(part, LANG_SAMPLE_BYTES - sample.len());
        if i == 0 {
            sample = Cow::Borrowed(piece);
        } else {
            sample.to_mut().push_str(piece);
        }
        if piece.len() < part.len() {
            break;
        }
    }
    sample
}

/// Platforms whose descriptions are the platform's own English text (`See
/// posts, photos and more on Facebook.`), not the advertiser's.
const BOILERPLATE_DESCRIPTIONS: [&str; 3] = ["facebook.com", "youtube.com", "instagram.com"];

/// A campaign's `script` and `lang` columns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CampaignTags {
    /// [`text_script`] of the title, or of the description without one.
    pub script: Option<&'static str>,
    /// The campaign's language (see [`campaign_tags`]).
    pub lang: Option<&'static str>,
}

/// The script and language of a campaign, from its title, description and
/// registered domain. The script is the title's (the description's when
/// there is no title). The title says most about the campaign; descriptions
/// are often boilerplate (YouTube's and Facebook's are always English). So
/// the title's script decides the language where a script is enough (a
/// Hindi title over an English YouTube description is Hindi); elsewhere the
/// detector reads title and description together, as more text makes it
/// surer, except on the platforms of [`BOILERPLATE_DESCRIPTIONS`].
///
/// One function for both columns, rather than SQL over [`text_script`],
/// [`script_language`] and [`detect_language`]: as `coalesce`, `CASE` and
/// `concat_ws` the rule copied every batch's text columns three times (~4%
/// of `preprocess`'s CPU in `perf`: the filters and merges of `CASE`, and
/// the joined text), and each function read the title's letters again.
pub fn campaign_tags(
    title: Option<&str>,
    description: Option<&str>,
    domain: Option<&str>,
) -> CampaignTags {
    let Some(lead) = title.or(description) else {
        return CampaignTags::default();
    };
    // Tallied once: reading every letter's script is the costly part for
    // non-Latin text.
    let lead_tally = ScriptTally::of(lead);
    let script = lead_tally.dominant();
    let tags = |lang| CampaignTags {
        script: script.map(|script| script.full_name()),
        lang,
    };
    if let Some(lang) = script.and_then(|script| language_of_script(script, &[lead])) {
        return tags(Some(lang));
    }
    let lang = match (title, description) {
        (Some(title), Some(description))
            if !domain.is_some_and(|d| BOILERPLATE_DESCRIPTIONS.contains(&d)) =>
        {
            let mut tally = lead_tally;
            tally.add(&ScriptTally::of(description));
            tally
                .dominant()
                .and_then(|script| detect_in_script(&[title, description], script))
        }
        _ => script.and_then(|script| detect_in_script(&[lead], script)),
    };
    tags(lang)
}

/// A language stop words can vote for: (stop-words list code, ISO 639-3
/// code, the same language in whichlang when whichlang knows it).
type VotingLanguage = (&'static str, &'static str, Option<whichlang::Lang>);

/// The languages stop words vote for. Those whichlang knows can be settled
/// by the two agreeing; the others (Danish, Hungarian, Romanian,
/// Indonesian from NLTK; Polish and Czech from stopwords-iso) only send the
/// text on to whatlang.
const STOP_WORD_LANGUAGES: [VotingLanguage; 17] = {
    use whichlang::Lang::*;
    [
        ("en", "eng", Some(Eng)),
        ("de", "deu", Some(Deu)),
        ("es", "spa", Some(Spa)),
        ("fr", "fra", Some(Fra)),
        ("pt", "por", Some(Por)),
        ("nl", "nld", Some(Nld)),
        ("it", "ita", Some(Ita)),
        ("tr", "tur", Some(Tur)),
        ("sv", "swe", Some(Swe)),
        ("ru", "rus", Some(Rus)),
        ("ar", "ara", Some(Ara)),
        ("da", "dan", None),
        ("hu", "hun", None),
        ("ro", "ron", None),
        ("id", "ind", None),
        ("pl", "pol", None),
        ("cs", "ces", None),
    ]
};

/// The stop words of [`STOP_WORD_LANGUAGES`].
static STOP_WORDS: std::sync::LazyLock<StopWords> = std::sync::LazyLock::new(StopWords::load);

/// A stop word's number (which tells repeats apart) and the languages (bits
/// of [`STOP_WORD_LANGUAGES`]) it belongs to.
type StopWord = (u32, u32);

/// Each stop word, found two ways: one of plain ASCII and at most 8 bytes
/// (most stop words, and most words of most texts) by its bytes packed in
/// a `u64`, so a text's word is looked up without a lower-cased copy or a
/// string hash; any other by its text.
struct StopWords {
    packed: foldhash::HashMap<u64, StopWord>,
    other: foldhash::HashMap<&'static str, StopWord>,
}

impl StopWords {
    fn load() -> Self {
        let mut table = Self {
            packed: foldhash::HashMap::default(),
            other: foldhash::HashMap::default(),
        };
        for (number, (word, langs)) in languages_by_word().into_iter().enumerate() {
            let entry = (number as u32, langs);
            match packed(word.as_bytes(), false) {
                Some(key) => table.packed.insert(key, entry),
                None => table.other.insert(word, entry),
            };
        }
        table
    }

    /// `word` lower-cased, when that is a stop word; `lower` is scratch space.
    fn get(&self, word: &str, lower: &mut String) -> Option<StopWord> {
        if let Some(key) = packed(word.as_bytes(), true) {
            return self.packed.get(&key).copied();
        }
        lower.clear();
        if word.is_ascii() {
            lower.push_str(word);
            lower.make_ascii_lowercase();
        } else {
            lower.extend(word.chars().flat_map(char::to_lowercase));
        }
        match packed(lower.as_bytes(), false) {
            Some(key) => self.packed.get(&key),
            None => self.other.get(lower.as_str()),
        }
        .copied()
    }
}

/// Each stop word of [`STOP_WORD_LANGUAGES`] with the languages (bits of
/// that list) it belongs to.
fn languages_by_word() -> foldhash::HashMap<&'static str, u32> {
    let mut languages = foldhash::HashMap::default();
    for (bit, (code, _, _)) in STOP_WORD_LANGUAGES.iter().enumerate() {
        for word in stop_words::lookup(code).unwrap_or_default() {
            *languages.entry(*word).or_default() |= 1 << bit;
        }
    }
    languages
}

/// ASCII text of at most 8 bytes as one number, ASCII-lower-cased when
/// `lowercase` (NUL is never part of a word, so texts of different lengths
/// cannot share one).
fn packed(text: &[u8], lowercase: bool) -> Option<u64> {
    if text.len() > 8 || !text.is_ascii() {
        return None;
    }
    let mut bytes = [0u8; 8];
    bytes[..text.len()].copy_from_slice(text);
    if lowercase {
        bytes.make_ascii_lowercase();
    }
    Some(u64::from_le_bytes(bytes))
}

/// Distinct stop words of each language in a text.
struct StopWordVotes {
    hits: [u32; STOP_WORD_LANGUAGES.len()],
}

impl StopWordVotes {
    fn count(sample: &str) -> Self {
        let mut hits = [0u32; STOP_WORD_LANGUAGES.len()];
        let mut seen: SmallVec<[u32; 16]> = SmallVec::new();
        let mut lower = String::new();
        for word in sample
            .split(|c: char| !c.is_alphabetic())
            .filter(|w| !w.is_empty())
        {
            let Some((number, langs)) = STOP_WORDS.get(word, &mut lower) else {
                continue;
            };
            if seen.contains(&number) {
                continue;
            }
            seen.push(number);
            for (bit, count) in hits.iter_mut().enumerate() {
                *count += langs >> bit & 1;
            }
        }
        Self { hits }
    }

    /// The fast path. A language with [`MAJORITY`] more distinct stop words
    /// than any other is the answer, without whichlang's ~0.7 µs. Otherwise
    /// whichlang's character n-gram model must name one of the languages
    /// with the most distinct stop words (one, or a tie of two): two
    /// independent signals agreeing is the confidence whichlang alone
    /// lacks. On 95k generated texts that the script does not settle, the
    /// strict form (a single stop-word winner) answered for 85% (whatlang was
    /// confident on 57%); where whatlang was confident too they agreed on
    /// 97.5%, and the disagreements read were whatlang's mistakes (English
    /// titles called French or Danish, Russian text with English words
    /// called English). On the real sample it answered for 74 of 98 texts
    /// and never disagreed with a confident whatlang.
    ///
    /// A tie of two counts: short texts share stop words across languages
    /// (`in`, `de`, `la`, `care`), and whichlang picking one of two
    /// candidates is still two signals agreeing. On 300k generated rows,
    /// ties sent 11.6k distinct texts to whatlang, which was confident on a
    /// third of them and then called `Dress bridal in pearl dress.` French;
    /// `Abito e scarpe e Cagliari` ties Spanish and Italian, and whichlang
    /// settles it as Italian. Wider ties are left to whatlang: there the
    /// stop words say little and whichlang would decide alone (on the real
    /// sample it called `Varelas's Construction LLC FB page` French out of
    /// an English/French/Hungarian/Czech tie).
    fn settled(&self, sample: &str) -> Option<&'static str> {
        let top = *self.hits.iter().max()?;
        let leaders = || {
            STOP_WORD_LANGUAGES
                .iter()
                .zip(self.hits)
                .filter(move |(_, n)| *n == top)
                .map(|(language, _)| language)
        };
        // whichlang only runs when one of the leaders is a language it knows.
        if top == 0 || leaders().count() > 2 || leaders().all(|(_, _, model)| model.is_none()) {
            return None;
        }
        // A clear majority settles only the languages whichlang knows: the
        // others go on to whatlang, as they would after whichlang.
        let runner_up = self
            .hits
            .iter()
            .filter(|n| **n < top)
            .max()
            .copied()
            .unwrap_or(0);
        if let Some((_, code, Some(_))) = leaders().next()
            && leaders().count() == 1
            && top >= runner_up + MAJORITY
        {
            return Some(code);
        }
        let model = whichlang::detect_language(sample);
        leaders()
            .find(|(_, _, known)| *known == Some(model))
            .map(|(_, code, _)| *code)
    }
}

/// Distinct stop words one language needs over every other to be named
/// without whichlang. Why: asking whichlang was a third of the language
/// path's cost, and where a majority this clear met a whichlang that named
/// another language (1.5% of 168k such bench texts) the stop words were the
/// ones to trust: `Konzert für theatre neue Hamburg | ... Tickets und ...`
/// went on to whatlang as French, `Chair y rug y Bizkaia | ... Doors para
/// heating nuevo ...` as Dutch. A margin of one would settle 65k more texts,
/// but whichlang named another language on 5.8% of them; a single leader
/// whose words other languages share (3-19% disagreement, measured in
/// session 18) is no majority either.
const MAJORITY: u32 = 2;

/// Letters of the Latin-script languages whatlang is allowed and whichlang
/// does not know (Polish, Czech, Hungarian, Romanian, Danish), and of
/// Ukrainian.
fn foreign_to_whichlang(c: char) -> bool {
    matches!(
        c,
        'ą' | 'ć' | 'ę' | 'ł' | 'ń' | 'ś' | 'ź' | 'ż' // Polish
            | 'č' | 'ď' | 'ě' | 'ň' | 'ř' | 'š' | 'ť' | 'ů' | 'ž' // Czech
            | 'ő' | 'ű' // Hungarian
            | 'ă' | 'ș' | 'ț' | 'ţ' // Romanian
            | 'æ' | 'ø' // Danish
            | 'і' | 'ї' | 'є' | 'ґ' // Ukrainian
    )
}

/// Whether a text the fast path left open is worth whatlang's answer (30-60
/// µs from whatlang itself, a few µs from [`super::trigrams`]):
/// when its stop words point somewhere but the fast path could not settle
/// it (a tie, a language whichlang does not know, or whichlang naming
/// another language), or when it has letters of a language whichlang does
/// not know. A text with neither (a brand name, a list of product words)
/// stays NULL: whatlang was rarely confident on those, and often wrong when
/// it was. On 95k generated texts the script does not settle, this leaves
/// whatlang ~10% of them, where it read 39% before and all at first
/// (77% of `preprocess`).
fn needs_trigrams(votes: &StopWordVotes, sample: &str) -> bool {
    votes.hits.iter().any(|n| *n > 0) || sample.chars().any(foreign_to_whichlang)
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
    static SEEN: RefCell<foldhash::HashMap<u64, Option<&'static str>>> =
        RefCell::new(foldhash::HashMap::default());
}

/// `detect(sample)`, or the answer this thread gave for the same sample.
fn remembered(
    sample: &str,
    detect: impl FnOnce(&str) -> Option<&'static str>,
) -> Option<&'static str> {
    // foldhash, as the other tables here: the key only indexes this thread's
    // memory, so std's SipHash (built to resist chosen collisions) buys nothing.
    let key = foldhash::fast::FixedState::with_seed(0).hash_one(sample);
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
    use proptest::strategy::Strategy;

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

    /// The vendored whichlang's faster scorer gives the published
    /// function's answer (see `vendor/whichlang/README.md`).
    #[test]
    fn whichlang_answers_are_unchanged_on_generated_texts() {
        let mut texts = 0;
        for (title, description) in crate::clean::generated_titles_and_descriptions(5) {
            let joined = format!("{title} {description}");
            for text in [
                title.as_str(),
                &description,
                &joined,
                sample_of(&[&title, &description]).as_ref(),
            ] {
                assert_eq!(
                    whichlang::detect_language(text),
                    whichlang::detect_language_reference(text),
                    "{text:?}"
                );
                texts += 1;
            }
        }
        assert_eq!(texts, 4 * 2_993, "four texts from each six-field record");
    }

    proptest::proptest! {
        /// whichlang's faster scorer agrees with the published function on
        /// any text: plain ASCII, accented and other scripts, emoji and
        /// control characters.
        #[test]
        fn whichlang_answers_are_unchanged_on_any_text(
            text in proptest::prop_oneof![
                "\\PC{0,300}",
                "[a-zA-Z0-9 .,'!?#-]{0,300}",
                "[a-zäöüéèçñßøåąęł .,-]{0,200}",
                ".{0,200}",
            ]
        ) {
            proptest::prop_assert_eq!(
                whichlang::detect_language(&text),
                whichlang::detect_language_reference(&text)
            );
        }

        /// The sample is the joined text cut where a joined copy would be.
        #[test]
        fn a_sample_is_the_start_of_the_joined_parts(
            parts in proptest::collection::vec("[a é😂]{0,120}", 0..4)
        ) {
            let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
            let joined = parts.join(" ");
            let sample = sample_of(&parts);
            proptest::prop_assert_eq!(sample.as_ref(), truncate_at_char(&joined, LANG_SAMPLE_BYTES));
        }

        /// A word is the stop word its lower-cased text is, looked up either
        /// way: short ASCII words (in any case) by number, the rest by text.
        #[test]
        fn stop_words_are_found_by_their_lower_case_text(
            word in proptest::prop_oneof![
                "[a-zA-Z]{1,10}",
                "[a-zäöüéèçñıİKßА-Яа-я]{1,10}",
                proptest::sample::select(stop_word_list()).prop_map(|w| w.to_uppercase()),
                proptest::sample::select(stop_word_list()).prop_map(str::to_string),
            ]
        ) {
            let lower: String = word.chars().flat_map(char::to_lowercase).collect();
            let expected = languages_by_word().get(lower.as_str()).copied();
            let found = STOP_WORDS.get(&word, &mut String::new()).map(|(_, langs)| langs);
            proptest::prop_assert_eq!(found, expected);
        }

        /// A title's tally plus its description's is the joined text's.
        #[test]
        fn tallies_add_up(title in "[aé Яक😂]{0,40}", description in "[aé Яक漢]{0,40}") {
            let mut tally = ScriptTally::of(&title);
            tally.add(&ScriptTally::of(&description));
            proptest::prop_assert_eq!(
                tally.dominant(),
                dominant_script(&format!("{title} {description}"))
            );
        }
    }

    /// Every stop word of the voting languages.
    fn stop_word_list() -> Vec<&'static str> {
        languages_by_word().into_keys().collect()
    }

    #[test]
    fn a_campaign_is_read_by_its_title_script_or_its_advertisers_text() {
        let campaign_language =
            |title, description, domain| campaign_tags(title, description, domain).lang;
        let english = Some("Watch the full video and subscribe to the channel for more");
        // The title's script wins over an English platform description.
        assert_eq!(
            campaign_language(Some("भागो पापा भागो"), english, Some("youtube.com")),
            Some("hin")
        );
        // A title too short to tell: the description decides, unless it is
        // the platform's own text.
        let spanish = Some("Ofertas de verano y la mejor selección de zapatillas");
        assert_eq!(
            campaign_language(Some("Nike"), spanish, Some("nike.com")),
            Some("spa")
        );
        assert_eq!(
            campaign_language(Some("Nike"), spanish, Some("facebook.com")),
            None
        );
        assert_eq!(
            campaign_language(None, spanish, Some("facebook.com")),
            Some("spa")
        );
        assert_eq!(campaign_language(None, None, None), None);
        // The script is the title's, or the description's without a title.
        let tags = campaign_tags(Some("भागो पापा भागो"), english, Some("youtube.com"));
        assert_eq!(tags.script, Some("Devanagari"));
        assert_eq!(campaign_tags(None, spanish, None).script, Some("Latin"));
        assert_eq!(campaign_tags(Some("12345"), spanish, None).script, None);
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
    fn two_agreeing_signals_answer_and_no_evidence_stays_unknown() {
        // Stop words (`de`, `y`, `la`) and whichlang agree.
        assert_eq!(
            detect_language("Ofertas de verano y la mejor selección de zapatillas"),
            Some("spa")
        );
        // No stop word and no telling letter: not guessed.
        assert_eq!(detect_language("Nike Air Max 90 Sneaker"), None);
        // Polish letters: whichlang does not know Polish, whatlang settles it
        // (see also the real sample's Polish row in the integration tests).
        assert_eq!(
            detect_language("Sukienka dostępna w naszym sklepie internetowym"),
            Some("pol")
        );
    }

    /// The languages with stop words in `s` and how many distinct ones
    /// each, most first (ties by code, last first).
    fn stop_word_counts(s: &str) -> Vec<(u32, &'static str)> {
        let mut counts: Vec<(u32, &str)> = STOP_WORD_LANGUAGES
            .iter()
            .zip(StopWordVotes::count(s).hits)
            .filter(|(_, n)| *n > 0)
            .map(|((_, code, _), n)| (n, *code))
            .collect();
        counts.sort_unstable_by(|a, b| b.cmp(a));
        counts
    }

    #[test]
    fn whichlang_breaks_a_tie_of_two_but_not_a_wider_one() {
        let votes = |s: &str| {
            let counts = stop_word_counts(s);
            let mut tied: Vec<&str> = counts
                .iter()
                .filter(|(n, _)| *n == counts[0].0)
                .map(|(_, code)| *code)
                .collect();
            tied.sort_unstable();
            tied
        };
        // whatlang alone is not confident on these; the tie is what settles them.
        let unsure = |s: &str| {
            DETECTOR
                .detect(s)
                .is_none_or(|(_, confidence)| confidence < MIN_CONFIDENCE)
        };
        // `la`, `con` are Spanish and Italian stop words alike.
        let italian = "School la abroad con Napoli | Studiare con students la corso e learn nuovo learn Venezia.";
        assert_eq!(votes(italian), ["ita", "spa"]);
        assert!(unsure(italian));
        assert_eq!(detect_language(italian), Some("ita"));
        // `in` is English and Dutch.
        let english = "Reia White Women's Low top sneakers | Men men in pearl jersey. Fused bodice, backless bridal.";
        assert_eq!(votes(english), ["eng", "nld"]);
        assert!(unsure(english));
        assert_eq!(detect_language(english), Some("eng"));
        // Four languages tie on one stop word each: whichlang would decide
        // alone (it says French), so whatlang reads it and is not confident.
        let page = "Varelas's Construction LLC FB page";
        assert_eq!(votes(page), ["ces", "eng", "fra", "hun"]);
        assert_eq!(detect_language(page), None);
    }

    #[test]
    fn a_clear_stop_word_majority_settles_without_whichlang() {
        // Four German stop words (`für`, `der`, `die`, `und`) against two
        // Dutch ones at most; whichlang, reading the English content words,
        // names another language.
        let german = "Konzert für theatre neue Hamburg | Eventbrite | Festival der tour die Tickets der party und theatre Zürich.";
        assert_eq!(stop_word_counts(german)[..2], [(4, "deu"), (2, "nld")]);
        assert_ne!(whichlang::detect_language(german), whichlang::Lang::Deu);
        assert_eq!(detect_language(german), Some("deu"));
        // A lead of one is no majority: whichlang must agree, and here it
        // names French, so the text goes on to whatlang (not confident).
        let italian = "Tax per prestito il Roma | Payment per credit la bank";
        assert_eq!(stop_word_counts(italian)[..2], [(3, "ita"), (2, "ron")]);
        assert_eq!(whichlang::detect_language(italian), whichlang::Lang::Fra);
        assert_eq!(detect_language(italian), None);
    }

    #[test]
    fn a_repeated_text_gets_the_same_answer() {
        let text = "Encuentra lo mejor de Nike. Obtén la innovación que estas buscando";
        let first = detect_language(text);
        assert_eq!(first, Some("spa"));
        assert_eq!(detect_language(text), first);
    }
}
