#!/usr/bin/env python3
"""Writes src/clean/whatlang-profiles.txt from whatlang's own source.

adlens computes whatlang's trigram distances through an inverted index
(src/clean/trigrams.rs) and needs the same profiles whatlang ranks against:
for the Latin and Cyrillic languages adlens allows, in whatlang's order, one
line each: the group (`lat`, `cyr`), the ISO 639-3 code, then the 300 trigrams of the profile
(3 characters each, most frequent first, no separators) and a closing `|`
(a profile may end in a space, which editors strip).

Usage: scripts/whatlang-profiles.py PATH/TO/whatlang-0.16.4/src/trigrams/profiles.rs
(whatlang is MIT-licensed; its copyright notice is kept in the output.)
"""

import re
import sys

ALLOWED = {
    "eng", "deu", "spa", "fra", "por", "ita", "nld", "pol", "tur", "ind", "swe",
    "dan", "ces", "ron", "hun", "vie", "rus", "ukr",
}

source = open(sys.argv[1], encoding="utf-8").read()
out = [
    "# Trigram profiles of whatlang 0.16.4 (https://github.com/greyblake/whatlang-rs),",
    "# MIT License, Copyright (c) Serhii Potapov. Written by scripts/whatlang-profiles.py.",
]
for group in ("LATIN_LANGS", "CYRILLIC_LANGS"):
    start = source.index(f"pub static {group}")
    end = source.find("pub static", start + 1)
    body = source[start : end if end > 0 else len(source)]
    for lang, trigrams in re.findall(r"\(\s*Lang::(\w+),\s*&\[(.*?)\]", body, re.S):
        code = lang.lower()
        if code not in ALLOWED:
            continue
        chars = re.findall(r"Trigram\('(.)', '(.)', '(.)'\)", trigrams)
        out.append(f"{group[:3].lower()} {code} " + "".join(a + b + c for a, b, c in chars) + "|")
sys.stdout.write("\n".join(out) + "\n")
