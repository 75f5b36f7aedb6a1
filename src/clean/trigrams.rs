//! whatlang's answer (language and confidence, the same bits) for Latin and
//! Cyrillic text at a fraction of its cost.
//!
//! Why: whatlang ranks a text against each allowed language's 300 most
//! frequent trigrams by looking every profile trigram up in a map of the
//! text's trigrams: 16 x 300 lookups per Latin text whatever its length,
//! 30-60 µs, and 15% of `preprocess`'s CPU even though only the texts the
//! fast paths of [`super::lang`] leave open reach it. A profile trigram the
//! text lacks always costs the same (the maximum), so the distance only
//! depends on the profile trigrams the text has. This module walks the text's
//! own trigrams (~100 in a 160-byte sample) through an inverted index from
//! trigram to (language, rank) and adds the constant for the rest.
//!
//! Everything else is whatlang's: the script (`detect_script`), the alphabet
//! scores (its `dev` API), and, copied line for line below, how its combined
//! method weighs, sorts and turns the two into a confidence. The profiles are
//! whatlang's too (`whatlang-profiles.txt`, written from its source by
//! `scripts/whatlang-profiles.py`). Any other script, or an allowlist naming a
//! language the file lacks, goes to whatlang itself. The unit tests compare
//! both answers on real, generated and arbitrary texts.

use std::cmp::Ordering;

use foldhash::HashMap;
use whatlang::dev::{
    FilterList, LowercaseText, RawAlphabetsInfo, alphabet_cyrillic_calculate_scores,
    alphabet_latin_calculate_scores,
};
use whatlang::{Lang, Script};

/// whatlang's cost of a profile trigram the text lacks (and the cap on one
/// rank difference it otherwise pays).
const MAX_TRIGRAM_DISTANCE: u32 = 300;
/// whatlang's cap on a language's total distance.
const MAX_TOTAL_DISTANCE: u32 = MAX_TRIGRAM_DISTANCE * MAX_TRIGRAM_DISTANCE;
/// The text's most frequent trigrams whatlang ranks.
const TEXT_TRIGRAMS_SIZE: usize = 600;

/// whatlang's trigram profiles of the languages adlens allows.
const PROFILES: &str = include_str!("whatlang-profiles.txt");

/// A trigram as one number: three code points of 21 bits, the first highest,
/// so numeric order is whatlang's (lexicographic) trigram order.
fn pack(a: char, b: char, c: char) -> u64 {
    (u64::from(a) << 42) | (u64::from(b) << 21) | u64::from(c)
}

/// The allowed languages of one script, in whatlang's order, and where each
/// trigram stands in their profiles.
#[derive(Debug, Default)]
struct Group {
    langs: Vec<Lang>,
    /// Trigrams per profile: whatlang charges each absent one the maximum.
    sizes: Vec<u32>,
    /// Trigram to (index into `langs`, rank in that profile).
    ranks: HashMap<u64, Vec<(u8, u16)>>,
}

impl Group {
    /// The profiles of `group` (`lat`, `cyr`) from the file, keeping the
    /// allowed languages; `None` when an allowed language of `script` has no
    /// profile there (whatlang then answers itself).
    fn load(group: &str, script: Script, allowed: &[Lang]) -> Option<Self> {
        let mut out = Self::default();
        for line in PROFILES.lines().filter(|l| l.starts_with(group)) {
            let mut parts = line.splitn(3, ' ');
            let (_, code, trigrams) = (parts.next()?, parts.next()?, parts.next()?);
            let lang = Lang::from_code(code)?;
            if !allowed.contains(&lang) {
                continue;
            }
            let chars: Vec<char> = trigrams.strip_suffix('|')?.chars().collect();
            let index = u8::try_from(out.langs.len()).ok()?;
            for (rank, t) in chars.chunks_exact(3).enumerate() {
                let rank = u16::try_from(rank).ok()?;
                out.ranks
                    .entry(pack(t[0], t[1], t[2]))
                    .or_default()
                    .push((index, rank));
            }
            out.langs.push(lang);
            out.sizes.push(u32::try_from(chars.len() / 3).ok()?);
        }
        let complete = script
            .langs()
            .iter()
            .filter(|lang| allowed.contains(lang))
            .all(|lang| out.langs.contains(lang));
        complete.then_some(out)
    }

    /// whatlang's trigram scores of `text` for each language, best first,
    /// and the number of distinct trigrams it ranked
    /// (`trigrams::detection::calculate_scores_in_profiles`).
    fn scores(&self, text: &LowercaseText) -> (Vec<(Lang, f64)>, usize) {
        let ranked = ranked_trigrams(text);
        let count = ranked.len() as u32;
        // A profile trigram the text has costs |rank difference| instead of
        // the maximum: start from all absent and correct for each present.
        let mut totals: Vec<i64> = self
            .sizes
            .iter()
            .map(|n| i64::from(n * MAX_TRIGRAM_DISTANCE))
            .collect();
        for (position, trigram) in ranked.iter().enumerate() {
            for &(lang, rank) in self.ranks.get(trigram).into_iter().flatten() {
                let step = (position as i64 - i64::from(rank)).abs();
                totals[usize::from(lang)] += step - i64::from(MAX_TRIGRAM_DISTANCE);
            }
        }
        let mut distances: Vec<(Lang, u32)> = self
            .langs
            .iter()
            .zip(totals)
            .map(|(lang, total)| {
                let mut total = u32::try_from(total).unwrap_or(0);
                if MAX_TRIGRAM_DISTANCE > count {
                    let delta = MAX_TRIGRAM_DISTANCE - count;
                    total = total.saturating_sub(delta * MAX_TRIGRAM_DISTANCE);
                }
                (*lang, total.clamp(0, MAX_TOTAL_DISTANCE))
            })
            .collect();
        distances.sort_unstable_by_key(|(_, distance)| *distance);
        let max = count * MAX_TRIGRAM_DISTANCE;
        let scores = distances
            .into_iter()
            .map(|(lang, d)| (lang, f64::from(max.saturating_sub(d)) / f64::from(max)))
            .collect();
        (scores, ranked.len())
    }
}

/// The text's distinct trigrams, most frequent first (ties: the greater
/// trigram first), at most [`TEXT_TRIGRAMS_SIZE`]: whatlang's
/// `get_trigrams_with_positions`, where digits and punctuation are spaces
/// and a trigram may not centre on a space next to another.
fn ranked_trigrams(text: &str) -> Vec<u64> {
    // Sorted and counted in runs rather than in a hash map: a sample has at
    // most a few hundred trigrams, and the map's growth (`reserve_rehash`)
    // showed in the profile. Ties are then broken as before, by trigram.
    let mut trigrams = Vec::with_capacity(text.len() + 1);
    let mut chars = text
        .chars()
        .map(|c| if whatlang_stop_char(c) { ' ' } else { c })
        .chain(Some(' '));
    let mut c1 = ' ';
    let mut c2 = chars.next().unwrap_or(' ');
    for c3 in chars {
        if !(c2 == ' ' && (c1 == ' ' || c3 == ' ')) {
            trigrams.push(pack(c1, c2, c3));
        }
        c1 = c2;
        c2 = c3;
    }
    trigrams.sort_unstable();
    let mut by_count: Vec<(u32, u64)> = trigrams
        .chunk_by(|a, b| a == b)
        .map(|run| (run.len() as u32, run[0]))
        .collect();
    by_count.sort_unstable_by(|a, b| b.cmp(a));
    by_count.truncate(TEXT_TRIGRAMS_SIZE);
    by_count.into_iter().map(|(_, t)| t).collect()
}

/// whatlang's `is_stop_char`: ASCII space, digits and punctuation.
fn whatlang_stop_char(c: char) -> bool {
    matches!(c, '\u{0000}'..='\u{0040}' | '\u{005B}'..='\u{0060}' | '\u{007B}'..='\u{007E}')
}

/// whatlang's `Detector::with_allowlist(..).detect(..)`, as (language,
/// confidence).
#[derive(Debug)]
pub struct Detector {
    filter: FilterList,
    latin: Option<Group>,
    cyrillic: Option<Group>,
    whatlang: whatlang::Detector,
}

impl Detector {
    /// A detector choosing among `allowed` only.
    pub fn with_allowlist(allowed: &[Lang]) -> Self {
        Self {
            filter: FilterList::allow(allowed.to_vec()),
            latin: Group::load("lat", Script::Latin, allowed),
            cyrillic: Group::load("cyr", Script::Cyrillic, allowed),
            whatlang: whatlang::Detector::with_allowlist(allowed.to_vec()),
        }
    }

    /// The most likely language of `text` and whatlang's confidence in it.
    pub fn detect(&self, text: &str) -> Option<(Lang, f64)> {
        type Alphabet = fn(&LowercaseText, &FilterList) -> RawAlphabetsInfo;
        let (group, alphabet): (_, Alphabet) = match whatlang::detect_script(text)? {
            Script::Latin => (self.latin.as_ref(), alphabet_latin_calculate_scores),
            Script::Cyrillic => (self.cyrillic.as_ref(), alphabet_cyrillic_calculate_scores),
            _ => return self.whatlang_answer(text),
        };
        let Some(group) = group else {
            return self.whatlang_answer(text);
        };
        let lower = LowercaseText::new(text);
        let alphabet = alphabet(&lower, &self.filter);
        let (trigram, count) = group.scores(&lower);
        combine(&alphabet, &trigram, count)
    }

    /// whatlang's own answer, for the texts this module has no profiles for.
    fn whatlang_answer(&self, text: &str) -> Option<(Lang, f64)> {
        let info = self.whatlang.detect(text)?;
        Some((info.lang(), info.confidence()))
    }
}

/// whatlang's combined method (`combined::raw_detect` and `detect`): the
/// alphabet and trigram scores weighed by the text's length, best first, and
/// the confidence from the best two.
fn combine(
    alphabet: &RawAlphabetsInfo,
    trigram: &[(Lang, f64)],
    count: usize,
) -> Option<(Lang, f64)> {
    let mut langs: Vec<Lang> = alphabet.scores.iter().map(|x| x.0).collect();
    for (lang, _) in trigram {
        if !langs.contains(lang) {
            langs.push(*lang);
        }
    }
    let alphabet_weight =
        (-(alphabet.count as f64 / 300.0) + 2.0 / 3.0).clamp(1.0 / 3.0, 2.0 / 3.0);
    let trigram_weight = 1.0 - alphabet_weight;
    let score_of = |scores: &[(Lang, f64)], lang: Lang| {
        scores.iter().find(|(l, _)| *l == lang).map_or(0.0, |x| x.1)
    };
    let mut scores: Vec<(Lang, f64)> = langs
        .into_iter()
        .map(|lang| {
            let a = score_of(&alphabet.scores, lang);
            let t = score_of(trigram, lang);
            (lang, a * alphabet_weight + t * trigram_weight)
        })
        .collect();
    scores.sort_unstable_by(|a, b| b.1.partial_cmp(&a.1).unwrap_or(Ordering::Less));
    let (lang, best) = *scores.first()?;
    let confidence = scores
        .get(1)
        .map_or(1.0, |(_, second)| confidence(best, *second, count));
    Some((lang, confidence))
}

/// whatlang's `calculate_confidence`.
fn confidence(highest: f64, second: f64, count: usize) -> f64 {
    if highest == 0.0 {
        return 0.0;
    }
    if second == 0.0 {
        return highest;
    }
    let confident_rate = (3.0 / count as f64) + 0.015;
    let rate = (highest - second) / second;
    if rate > confident_rate {
        1.0
    } else {
        rate / confident_rate
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::clean::lang::LANGUAGES;
    use crate::clean::text::truncate_at_char;

    static FAST: std::sync::LazyLock<Detector> =
        std::sync::LazyLock::new(|| Detector::with_allowlist(&LANGUAGES));
    static WHATLANG: std::sync::LazyLock<whatlang::Detector> =
        std::sync::LazyLock::new(|| whatlang::Detector::with_allowlist(LANGUAGES.to_vec()));

    /// A language and its confidence as bits (to compare exactly).
    type Answer = Option<(Lang, u64)>;

    /// This module's answer and whatlang's.
    fn both(text: &str) -> (Answer, Answer) {
        let fast = FAST.detect(text).map(|(l, c)| (l, c.to_bits()));
        let slow = WHATLANG
            .detect(text)
            .map(|i| (i.lang(), i.confidence().to_bits()));
        (fast, slow)
    }

    #[test]
    fn every_allowed_latin_and_cyrillic_language_has_its_profile() {
        let latin = FAST.latin.as_ref().expect("Latin profiles");
        let cyrillic = FAST.cyrillic.as_ref().expect("Cyrillic profiles");
        assert_eq!(latin.langs.len(), 16);
        assert_eq!(cyrillic.langs, [Lang::Rus, Lang::Ukr]);
        assert!(latin.sizes.iter().chain(&cyrillic.sizes).all(|n| *n == 300));
        assert_eq!(
            latin.langs[1],
            Lang::Eng,
            "whatlang's order: Spanish, English, ..."
        );
    }

    #[test]
    fn whatlang_answers_are_unchanged_on_generated_texts() {
        let mut answered = 0;
        for (title, description) in crate::clean::generated_titles_and_descriptions(11) {
            let joined = format!("{title} {description}");
            for text in [title.as_str(), &description, truncate_at_char(&joined, 160)] {
                let (fast, slow) = both(text);
                assert_eq!(fast, slow, "{text:?}");
                answered += usize::from(fast.is_some());
            }
        }
        assert!(answered > 8_000, "{answered} answers");
    }

    #[test]
    fn whatlang_answers_are_unchanged_on_chosen_texts() {
        for text in [
            "",
            "   ",
            "a",
            "Die Ordnung muss für immer in diesem Codebase bleiben",
            "Sukienka z dresowej dzianiny, szary, dostępna w naszym sklepie",
            "Wij zoeken jou. Een mens dat lacht, soms foutjes maakt",
            "Купить квартиру в Москве недорого",
            "Купити квартиру в Києві недорого",
            "Ofertas de verano y la mejor selección de zapatillas",
            "Tiếng Việt có dấu",
            "مرحبا بالعالم",
            "5月17日AI 智能選股",
            "Nike Air Max 90 Sneaker",
            "Varelas's Construction LLC FB page",
        ] {
            let (fast, slow) = both(text);
            assert_eq!(fast, slow, "{text:?}");
        }
    }

    proptest! {
        #[test]
        fn whatlang_answers_are_unchanged_on_any_text(text in "\\PC{0,200}") {
            let (fast, slow) = both(&text);
            prop_assert_eq!(fast, slow);
        }

        #[test]
        fn whatlang_answers_are_unchanged_on_latin_words(
            text in "[a-zA-Zàáâäçèéêëíîñóôöúüłśżąęćńőűășțæøåßčěřšůž ,.'-]{0,200}",
        ) {
            let (fast, slow) = both(&text);
            prop_assert_eq!(fast, slow);
        }

        #[test]
        fn whatlang_answers_are_unchanged_on_cyrillic_words(
            text in "[а-яА-ЯіїєґёЁ a-z,.!]{0,200}",
        ) {
            let (fast, slow) = both(&text);
            prop_assert_eq!(fast, slow);
        }
    }
}
