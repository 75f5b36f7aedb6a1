//! Landing-page URL rules: unwrap redirect wrappers, drop tracking parameters,
//! normalise host and port, and find the registered domain.
//!
//! These are plain functions over `&str`; `engine::udfs` exposes them to SQL.

use std::borrow::Cow;

use percent_encoding::percent_decode_str;
use url::Url;

/// How many nested redirect wrappers are peeled off before giving up
/// (a Facebook login wrapper around an `l.facebook.com` link is two).
const MAX_UNWRAP: usize = 4;

/// Query parameters that only identify the click, never the page.
const TRACKING_PARAMS: &[&str] = &[
    "fbclid",
    "gclid",
    "gclsrc",
    "dclid",
    "wbraid",
    "gbraid",
    "msclkid",
    "twclid",
    "ttclid",
    "li_fat_id",
    "mc_cid",
    "mc_eid",
    "_ga",
    "_gl",
    "yclid",
    "igshid",
    "rdt_cid",
    "epik",
    "s_kwcid",
    "ef_id",
    "__tn__",
    "_fb_noscript",
    "aaxitk",
    "obOrigUrl",
    "dicbo",
    "scid",
];

/// Prefixes of tracking parameter families (`utm_source`, `__cft__[0]`, `hsa_acc`, ...).
const TRACKING_PREFIXES: &[&str] = &[
    "utm_", "__cft__", "hsa_", "pk_", "mtm_", "cm_", "_hs", "mkt_",
];

/// The canonical form of a landing-page URL, or `None` when `raw` is not an
/// http(s) URL. Redirect wrappers are unwrapped, tracking parameters removed,
/// the host lower-cased and default ports dropped; everything else (path case,
/// parameter order and encoding) is kept as the advertiser wrote it.
/// A URL already in that form comes back borrowed, uncopied.
pub fn canonical_url(raw: &str) -> Option<Cow<'_, str>> {
    let raw = raw.trim();
    canonical_verbatim(raw).or_else(|| canonical_parsed(raw).map(Cow::Owned))
}

/// [`canonical_url`] through the `url` crate's full parse: any URL.
fn canonical_parsed(raw: &str) -> Option<String> {
    let mut url = parse_lenient(raw)?;
    for _ in 0..MAX_UNWRAP {
        match unwrap_redirect(&url) {
            Some(inner) => url = inner,
            None => break,
        }
    }
    strip_tracking(&mut url);
    if url.fragment() == Some("") {
        url.set_fragment(None);
    }
    Some(url.into())
}

/// [`canonical_url`] without a full parse, for the URLs the parser would
/// leave as they are (most landing pages): `http(s)://` in lower case, a
/// lower-case host name of plain labels, no port or user, and only bytes
/// that no part of the URL percent-encodes or rewrites, in a path without
/// dot segments. Their canonical form is the text itself with `/` for an
/// empty path and tracking pairs dropped; anything else (`None`) goes to
/// the parser. Why: the `url` crate's parse, with its percent-encoding and
/// query re-serialisation, was ~10% of `preprocess`'s CPU in `perf`.
fn canonical_verbatim(raw: &str) -> Option<Cow<'_, str>> {
    let rest = raw
        .strip_prefix("https://")
        .or_else(|| raw.strip_prefix("http://"))?;
    if !raw.bytes().all(|b| VERBATIM_BYTES[usize::from(b)]) {
        return None;
    }
    let host_end = rest.bytes().position(|b| matches!(b, b'/' | b'?' | b'#'));
    let (host, tail) = rest.split_at(host_end.unwrap_or(rest.len()));
    let (before_fragment, fragment) = split_off(tail, b'#');
    let (path, query) = split_off(before_fragment, b'?');
    let path = if path.is_empty() { "/" } else { path };
    // Dot segments (`/./`, `/../`, also as `%2e`) are resolved by the parser.
    let rewritten = path.as_bytes().windows(3).any(|w| {
        w[..2] == *b"/." || (w[0] == b'%' && w[1] == b'2' && w[2].eq_ignore_ascii_case(&b'e'))
    }) || path.ends_with("/.");
    if !is_plain_host(host)
        || rewritten
        || fragment.is_some_and(|f| f.contains('#'))
        || redirect_keys(host, path).is_some()
    {
        return None;
    }
    let kept = [query, fragment].map(|part| part.map(|p| without_tracking(p).ok_or(p)));
    // Nothing to drop and a path: the URL is its own canonical form.
    let untouched = |part: &Option<Result<String, &str>>| {
        part.as_ref()
            .is_none_or(|p| p.as_ref().is_err_and(|p| !p.is_empty()))
    };
    if !tail.is_empty() && !tail.starts_with(['?', '#']) && kept.iter().all(untouched) {
        return Some(Cow::Borrowed(raw));
    }
    let mut canonical = String::with_capacity(raw.len() + 1);
    canonical.push_str(&raw[..raw.len() - tail.len()]);
    canonical.push_str(path);
    for (mark, part) in ['?', '#'].into_iter().zip(&kept) {
        let Some(part) = part else { continue };
        let part = match part {
            Ok(kept) => kept.as_str(),
            Err(whole) => whole,
        };
        if !part.is_empty() {
            canonical.push(mark);
            canonical.push_str(part);
        }
    }
    Some(Cow::Owned(canonical))
}

/// `s` before and after the first `mark`, if any.
fn split_off(s: &str, mark: u8) -> (&str, Option<&str>) {
    match memchr::memchr(mark, s.as_bytes()) {
        // `mark` is ASCII, so both sides are whole characters.
        Some(at) => (&s[..at], Some(&s[at + 1..])),
        None => (s, None),
    }
}

/// Bytes the URL parser keeps as they are in every part of an http(s) URL:
/// letters, digits and `-._~!$&()*+,;=:@/?#%` (not `'`: the query of a
/// special scheme encodes it). A table: this runs over every byte of every
/// URL.
const VERBATIM_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = (b as u8).is_ascii_alphanumeric();
        b += 1;
    }
    let punctuation = b"-._~!$&()*+,;=:@/?#%";
    let mut i = 0;
    while i < punctuation.len() {
        table[punctuation[i] as usize] = true;
        i += 1;
    }
    table
};

/// A host name the parser keeps as it is: lower-case labels of letters,
/// digits and `-`, at least two, none of them punycode (which the parser
/// checks and may rewrite), the last of letters only (a numeric or `0x`
/// last label makes the host an IPv4 address).
fn is_plain_host(host: &str) -> bool {
    let mut labels = host.split('.');
    let last = labels.next_back().unwrap_or_default();
    let plain = |label: &str| {
        !label.is_empty()
            && !label.starts_with("xn--")
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    host.contains('.')
        && !last.is_empty()
        && last.bytes().all(|b| b.is_ascii_lowercase())
        && labels.all(plain)
}

/// Parses an http(s) URL, accepting the scheme-less `www.example.com/path`
/// form that hand-typed landing pages sometimes have.
fn parse_lenient(raw: &str) -> Option<Url> {
    let raw = raw.trim();
    if raw.is_empty() || raw.contains(char::is_whitespace) {
        return None;
    }
    let url = if raw.contains("://") {
        Url::parse(raw).ok()?
    } else {
        // Only a bare `host[:port]/...` may go without a scheme: `mailto:x@y`
        // or `javascript:...` must not turn into a user name on a host.
        let authority = raw.split(['/', '?', '#']).next().unwrap_or_default();
        let port_ok = authority
            .split_once(':')
            .is_none_or(|(_, p)| p.chars().all(|c| c.is_ascii_digit()));
        if authority.contains('@') || !port_ok {
            return None;
        }
        Url::parse(&format!("http://{raw}")).ok()?
    };
    let http = matches!(url.scheme(), "http" | "https");
    (http
        && url
            .host_str()
            .is_some_and(|h| h.contains('.') || h == "localhost"))
    .then_some(url)
}

/// The target of a known redirect wrapper, if `url` is one.
fn unwrap_redirect(url: &Url) -> Option<Url> {
    redirect_keys(url.host_str()?, url.path())?
        .iter()
        .find_map(|key| query_value(url, key))
        .and_then(|target| parse_lenient(&target))
}

/// The query parameters that carry the target, in the order tried, when
/// `host` and `path` are a known redirect wrapper's.
fn redirect_keys(host: &str, path: &str) -> Option<&'static [&'static str]> {
    if is_facebook(host) && path.starts_with("/login") {
        Some(&["next"])
    } else if matches!(
        host,
        "l.facebook.com" | "lm.facebook.com" | "l.instagram.com"
    ) || (is_facebook(host) && path == "/l.php")
    {
        Some(&["u"])
    } else if is_google(host) && path == "/url" {
        Some(&["q", "url"])
    } else if host.ends_with("youtube.com") && path == "/redirect" {
        Some(&["q"])
    } else {
        None
    }
}

fn is_facebook(host: &str) -> bool {
    matches!(
        host,
        "facebook.com" | "www.facebook.com" | "m.facebook.com" | "web.facebook.com"
    )
}

fn is_google(host: &str) -> bool {
    let host = host.strip_prefix("www.").unwrap_or(host);
    host.strip_prefix("google.")
        .is_some_and(|tld| tld.split('.').all(|p| (2..=3).contains(&p.len())))
}

fn query_value(url: &Url, key: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

/// True for parameter names that only track the click.
pub fn is_tracking_param(name: &str) -> bool {
    TRACKING_PARAMS.iter().any(|p| p.eq_ignore_ascii_case(name))
        || TRACKING_PREFIXES
            .iter()
            // By bytes: `name` may start with a multi-byte character.
            .any(|p| {
                name.as_bytes()
                    .get(..p.len())
                    .is_some_and(|head| head.eq_ignore_ascii_case(p.as_bytes()))
            })
}

/// Drops tracking parameters from the query, and from a fragment that
/// carries `key=value` pairs too (`#section&utm_id=...` occurs in the wild).
/// What remains keeps its original bytes, so a URL without tracking
/// parameters comes out exactly as it went in.
fn strip_tracking(url: &mut Url) {
    if let Some(kept) = url.query().and_then(without_tracking) {
        url.set_query((!kept.is_empty()).then_some(kept.as_str()));
    }
    if let Some(kept) = url.fragment().and_then(without_tracking) {
        url.set_fragment((!kept.is_empty()).then_some(kept.as_str()));
    }
}

/// `params` (`a=1&utm_source=x&b`) without its tracking pairs, or `None`
/// when nothing was removed. Segments that are not `key=value` pairs stay.
fn without_tracking(params: &str) -> Option<String> {
    let is_tracking = |segment: &&str| {
        segment
            .split_once('=')
            .is_some_and(|(key, _)| is_tracking_param(&percent_decode_str(key).decode_utf8_lossy()))
    };
    if !params.split('&').any(|s| s.is_empty() || is_tracking(&s)) {
        return None;
    }
    let kept: Vec<&str> = params
        .split('&')
        .filter(|s| !s.is_empty() && !is_tracking(s))
        .collect();
    Some(kept.join("&"))
}

/// The host of an already canonical URL (as produced by [`canonical_url`]),
/// found without a second full parse: it sits between `://` and the next
/// `/`, `?` or `#`, after any user info and before any port.
pub fn url_host(canonical: &str) -> Option<&str> {
    let rest = canonical.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if host_port.starts_with('[') {
        host_port.split_inclusive(']').next()?
    } else {
        host_port.split(':').next()?
    };
    (!host.is_empty()).then_some(host)
}

/// The registered domain of `host` by the Public Suffix List
/// (`www.holidaypirates.co.uk` gives `holidaypirates.co.uk`). IP addresses and
/// hosts without a known suffix come back as they are.
pub fn registered_domain(host: &str) -> Option<&str> {
    if host.is_empty() {
        return None;
    }
    if host.starts_with('[') || host.parse::<std::net::Ipv4Addr>().is_ok() {
        return Some(host);
    }
    Some(psl::domain_str(host).unwrap_or(host))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn canon(raw: &str) -> String {
        canonical_url(raw)
            .unwrap_or_else(|| panic!("`{raw}` should parse"))
            .into_owned()
    }

    #[test]
    fn unwraps_facebook_login_redirects_and_drops_their_tracking() {
        let raw = "https://www.facebook.com/login/?next=https%3A%2F%2Fwww.facebook.com%2FHelloVacay%3F__cft__%5B0%5D%3DAZU6x91UUO%26__tn__%3D-UC%252CP-R&__cft__%5B0%5D=AZXZ&__tn__=-UC%2CP-R&_fb_noscript=1";
        assert_eq!(canon(raw), "https://www.facebook.com/HelloVacay");
        let profile = "https://www.facebook.com/login/?next=https%3A%2F%2Fwww.facebook.com%2Fprofile.php%3Fid%3D100092435801460&__cft__%5B0%5D=AZX&_fb_noscript=1";
        assert_eq!(
            canon(profile),
            "https://www.facebook.com/profile.php?id=100092435801460"
        );
        assert_eq!(
            canon("https://www.facebook.com/?_fb_noscript=1"),
            "https://www.facebook.com/"
        );
    }

    #[test]
    fn unwraps_link_shims_and_google_redirects() {
        assert_eq!(
            canon(
                "https://l.facebook.com/l.php?u=https%3A%2F%2Fshop.example.de%2Fa%3Futm_source%3Dfb%26x%3D1&h=AT0"
            ),
            "https://shop.example.de/a?x=1"
        );
        assert_eq!(
            canon("https://www.google.com/url?q=https://viajes.com.br/oferta&sa=D"),
            "https://viajes.com.br/oferta"
        );
        assert_eq!(
            canon("https://www.google.co.uk/url?url=https://a.example.org/"),
            "https://a.example.org/"
        );
    }

    #[test]
    fn drops_tracking_params_and_default_ports_but_keeps_the_rest_verbatim() {
        assert_eq!(
            canon("https://www.hottopic.com:443/product/x/20400725.html?mr:trackingCode=F1FF"),
            "https://www.hottopic.com/product/x/20400725.html?mr:trackingCode=F1FF"
        );
        assert_eq!(
            canon(
                "https://play.google.com/store/apps/details?id=com.getloan.app&gclid=EAIa&referrer=gclid%3DEAIa"
            ),
            "https://play.google.com/store/apps/details?id=com.getloan.app&referrer=gclid%3DEAIa"
        );
        assert_eq!(
            canon("https://bandabags.com?utm_source=google&utm_medium=cpc"),
            "https://bandabags.com/"
        );
        assert_eq!(
            canon("https://www.recliner-chairs-91869.com?backfill=0&KW1=United+States&fbclid=x"),
            "https://www.recliner-chairs-91869.com/?backfill=0&KW1=United+States"
        );
        assert_eq!(
            canon("HTTPS://WWW.Example.COM:8443/Path#"),
            "https://www.example.com:8443/Path"
        );
        assert_eq!(
            canon("https://www.bhhs.com/pa/pid-347158934#%237455&utm_id=2-8000&utm_content=alm"),
            "https://www.bhhs.com/pa/pid-347158934#%237455"
        );
        assert_eq!(
            canon("https://a.example.com/?&pa=1&&py=0"),
            "https://a.example.com/?pa=1&py=0"
        );
        assert_eq!(
            canon("https://www.draftkings.com/lp/achievements#/bestball/qb-hunt"),
            "https://www.draftkings.com/lp/achievements#/bestball/qb-hunt"
        );
    }

    #[test]
    fn takes_the_verbatim_path_only_where_the_parser_changes_nothing_else() {
        for (raw, canonical) in [
            ("https://a.example.com", Some("https://a.example.com/")),
            (
                "http://a-b.co.uk?x=1&utm_id=2#",
                Some("http://a-b.co.uk/?x=1"),
            ),
            (
                "https://a.io/p?fbclid=1#k&gclid=2",
                Some("https://a.io/p#k"),
            ),
            ("https://A.io/", None),
            ("https://a.io:443/", None),
            ("https://a.io/x/../y", None),
            ("https://a.io/x/%2E%2E/y", None),
            ("https://a.io/?q='x'", None),
            ("https://1.2.3.4/", None),
            ("https://xn--bcher-kva.de/", None),
            ("https://www.google.com/url?q=https://a.io/", None),
        ] {
            assert_eq!(canonical_verbatim(raw).as_deref(), canonical, "{raw}");
        }
    }

    /// URL-ish text from pieces that reach every branch of the verbatim
    /// path and the parser's rewrites.
    fn url_pieces() -> impl Strategy<Value = String> {
        let piece = prop::sample::select(vec![
            "a",
            "Z",
            "0",
            "9",
            "-",
            ".",
            "..",
            "/",
            "/.",
            "?",
            "#",
            "&",
            "=",
            "%",
            "%2e",
            "%41",
            "%zz",
            ":",
            ":80",
            ":443",
            "@",
            "'",
            "\\",
            " ",
            "|",
            "^",
            "[",
            "]",
            "+",
            ";",
            "~",
            "xn--",
            "com",
            "www.",
            "utm_source=x",
            "fbclid=1",
            "&&",
            "é",
            "google.com/url?q=",
            "0x1",
            "1.2",
            "*",
            "!",
            "$",
            "(",
            ")",
            ",",
            "{",
            "`",
            "\"",
        ]);
        (
            prop::sample::select(vec!["https://", "http://", "HTTP://", "", "https:/"]),
            prop::collection::vec(piece, 0..14),
        )
            .prop_map(|(scheme, pieces)| format!("{scheme}{}", pieces.concat()))
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(20_000))]

        #[test]
        fn the_verbatim_path_agrees_with_the_parser(raw in url_pieces()) {
            if let Some(fast) = canonical_verbatim(&raw) {
                proptest::prop_assert_eq!(Some(fast.into_owned()), canonical_parsed(&raw));
            }
        }
    }

    #[test]
    fn rejects_what_is_not_a_web_url() {
        for raw in [
            "",
            "-",
            "not a url",
            "mailto:a@b.c",
            "ftp://x.example.com/f",
            "javascript:alert(1)",
        ] {
            assert_eq!(canonical_url(raw), None, "{raw}");
        }
        assert_eq!(canon("www.example.com/page"), "http://www.example.com/page");
    }

    #[test]
    fn finds_hosts_and_registered_domains() {
        assert_eq!(
            url_host("https://user@www.a.co.uk:8080/x?y#z"),
            Some("www.a.co.uk")
        );
        assert_eq!(url_host("http://[::1]:80/"), Some("[::1]"));
        for (host, domain) in [
            ("www.holidaypirates.co.uk", "holidaypirates.co.uk"),
            ("viajes.com.br", "viajes.com.br"),
            ("ww38.generalexcerpts.com", "generalexcerpts.com"),
            ("m.youtube.com", "youtube.com"),
            ("food.grab.com", "grab.com"),
            ("uae.voxcinemas.com", "voxcinemas.com"),
            ("paintvine.co.nz", "paintvine.co.nz"),
            ("192.168.1.10", "192.168.1.10"),
        ] {
            assert_eq!(registered_domain(host), Some(domain), "{host}");
        }
    }
}
