//! Text rules for titles, keywords and descriptions: entity decoding, Unicode
//! NFKC, removal of control and invisible characters, whitespace collapsing,
//! and keyword splitting. Script and language detection live in
//! [`super::lang`].

use std::borrow::Cow;

use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfkc_quick};

/// Characters that carry no text: zero-width spaces, word joiners, byte-order
/// marks, soft hyphens and bidirectional controls. ZWJ/ZWNJ are handled apart.
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{200B}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}' | '\u{180E}')
}

/// ZWJ and ZWNJ shape Indic and Arabic-script words and glue emoji sequences
/// together; between two ASCII characters they are only noise.
fn is_joiner(c: char) -> bool {
    matches!(c, '\u{200C}' | '\u{200D}')
}

/// The clean form of a free-text field, or `None` when nothing is left.
/// HTML entities are decoded, the text is NFKC-normalised (so `Ⅲ` becomes
/// `III` and full-width letters become ASCII), control and invisible
/// characters removed, runs of white space collapsed to one space, and the
/// ends trimmed. Already-clean ASCII comes back borrowed, without copying.
pub fn normalize_text(s: &str) -> Option<Cow<'_, str>> {
    if is_clean_ascii(s) {
        return (!s.is_empty()).then_some(Cow::Borrowed(s));
    }
    let decoded = if s.contains('&') {
        html_escape::decode_html_entities(s)
    } else {
        Cow::Borrowed(s)
    };
    let nfkc: Cow<str> = match is_nfkc_quick(decoded.chars()) {
        IsNormalized::Yes => decoded,
        _ => Cow::Owned(decoded.nfkc().collect()),
    };
    let out = strip_and_collapse(&nfkc);
    (!out.is_empty()).then_some(Cow::Owned(out))
}

/// Printable ASCII with single inner spaces, no entity and no edge spaces:
/// the common case that needs no work at all.
fn is_clean_ascii(s: &str) -> bool {
    let b = s.as_bytes();
    b.iter().all(|&c| (0x20..0x7f).contains(&c) && c != b'&')
        && !s.contains("  ")
        && b.first() != Some(&b' ')
        && b.last() != Some(&b' ')
}

fn strip_and_collapse(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    let mut pending_space = false;
    while let Some(c) = chars.next() {
        if c.is_whitespace() || (c.is_control() && !is_invisible(c)) {
            pending_space = !out.is_empty();
            continue;
        }
        if is_invisible(c) {
            continue;
        }
        if is_joiner(c) {
            let prev_ascii = out.chars().next_back().is_none_or(|p| p.is_ascii());
            let next_ascii = chars.peek().is_none_or(|n| n.is_ascii());
            if prev_ascii || next_ascii {
                continue;
            }
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        out.push(c);
    }
    out
}

/// Splits a keywords field into clean, lower-cased, de-duplicated keywords,
/// in their original order. Commas (also ideographic `、` and `;`) separate.
pub fn split_keywords(s: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for part in s.split([',', ';', '、', '，']) {
        if let Some(k) = normalize_text(part) {
            let k = k.to_lowercase();
            if !out.contains(&k) {
                out.push(k);
            }
        }
    }
    out
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
pub fn truncate_at_char(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> Option<String> {
        normalize_text(s).map(Cow::into_owned)
    }

    #[test]
    fn only_printable_ascii_with_single_inner_spaces_is_already_clean() {
        for clean in ["", "a", "a b", "Summer sale - 50% off!"] {
            assert!(is_clean_ascii(clean), "{clean:?}");
        }
        for dirty in [
            " ",
            " a",
            "a ",
            "a  b",
            "a&b",
            "a\tb",
            "caf\u{e9}",
            "\u{7f}",
        ] {
            assert!(!is_clean_ascii(dirty), "{dirty:?}");
        }
    }

    #[test]
    fn clean_ascii_is_borrowed_untouched() {
        let s = "Hy-Vee Deals";
        assert!(matches!(normalize_text(s), Some(Cow::Borrowed(_))));
        assert_eq!(norm(""), None);
        assert_eq!(norm("   \t\n "), None);
    }

    #[test]
    fn decodes_entities_and_applies_nfkc() {
        assert_eq!(
            norm("Men&amp;Mice &mdash; Micetro").as_deref(),
            Some("Men&Mice — Micetro")
        );
        assert_eq!(
            norm("Today bet Ⅲ FB page").as_deref(),
            Some("Today bet III FB page")
        );
        assert_eq!(norm("Ｆｕｌｌ ｗｉｄｔｈ").as_deref(), Some("Full width"));
        assert_eq!(
            norm("Upcoming Dragvine™ Events").as_deref(),
            Some("Upcoming DragvineTM Events")
        );
    }

    #[test]
    fn collapses_whitespace_and_removes_invisible_and_control_characters() {
        assert_eq!(
            norm("Davenport Bridal Dress - Park & Fifth                      –").as_deref(),
            Some("Davenport Bridal Dress - Park & Fifth –")
        );
        assert_eq!(
            norm("Top 50  apps\r\nranking\u{0007}").as_deref(),
            Some("Top 50 apps ranking")
        );
        assert_eq!(
            norm("\u{FEFF}zero\u{200B}width\u{2060}").as_deref(),
            Some("zerowidth")
        );
        assert_eq!(norm("sa\u{200D}le").as_deref(), Some("sale"));
        // ZWJ inside an emoji sequence and ZWNJ in Devanagari are kept.
        assert_eq!(norm("👨\u{200D}👩").as_deref(), Some("👨\u{200D}👩"));
        assert_eq!(norm("क्\u{200C}ष").as_deref(), Some("क्\u{200C}ष"));
    }

    #[test]
    fn keeps_multilingual_text_and_emoji() {
        let title = "भागो पापा भागो 😂 ~ mini wood toy-woodworking art skill";
        assert_eq!(norm(title).as_deref(), Some(title));
        let zh = "5月17日AI 智能選股 技嘉 欣興";
        assert_eq!(norm(zh).as_deref(), Some(zh));
    }

    #[test]
    fn splits_keywords() {
        assert_eq!(
            split_keywords("video, sharing, camera phone, video phone, free, upload"),
            [
                "video",
                "sharing",
                "camera phone",
                "video phone",
                "free",
                "upload"
            ]
        );
        assert_eq!(
            split_keywords(",bawer,baur,Bower,bower,, "),
            ["bawer", "baur", "bower"]
        );
        assert!(split_keywords("").is_empty());
        assert_eq!(
            split_keywords("DDI microsoft, DDI Azure"),
            ["ddi microsoft", "ddi azure"]
        );
    }

    #[test]
    fn truncates_on_char_boundaries() {
        assert_eq!(truncate_at_char("héllo", 2), "h");
        assert_eq!(truncate_at_char("abc", 10), "abc");
    }
}
