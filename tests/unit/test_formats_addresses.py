"""Address text before the C1 grammar: glued addresses, author labels, repeated countries."""

from __future__ import annotations

import pytest

from stclusters.load.formats.addresses import c1_entries, named_country, normalise_entry
from stclusters.load.formats.c1 import parse_c1


@pytest.mark.parametrize(
    ("cell", "entries"),
    [
        # BIOSIS / Zoological Record: "Author; Address" without brackets, several authors at once
        (
            "Nordberg, Eric J.; James Cook Univ, Coll Sci and Engn, Townsville, Qld, Australia",
            ["James Cook Univ, Coll Sci and Engn, Townsville, Qld, Australia"],
        ),
        (
            "We, Pingping; Tam, Nora F. Y.; City Univ Hong Kong, Kowloon, Hong Kong, Peoples R China",
            ["City Univ Hong Kong, Kowloon, Hong Kong, Peoples R China"],
        ),
        (
            "Thompson, Frank R., III; Univ Missouri, Columbia, MO, 65211, USA, USA.",
            ["Univ Missouri, Columbia, MO, 65211, USA, USA."],
        ),
        # an HTML entity's ';' does not split an address
        (
            "Caprio, Enrico; Univ Torino, Dipartimento di Biologia animale e dell&apos;Uomo, Turin, Italy",
            ["Univ Torino, Dipartimento di Biologia animale e dell'Uomo, Turin, Italy"],
        ),
        # Core Collection: [authors] stay part of the address, two addresses stay two
        (
            "[Li, X; Wang, Y] Tsinghua Univ, Beijing, Peoples R China; [Kim, S] KAIST, Daejeon, South Korea",
            [
                "[Li, X; Wang, Y] Tsinghua Univ, Beijing, Peoples R China",
                "[Kim, S] KAIST, Daejeon, South Korea",
            ],
        ),
    ],
)
def test_c1_entries(cell: str, entries: list[str]) -> None:
    assert c1_entries(cell) == entries


@pytest.mark.parametrize(
    ("entry", "city", "postal", "country"),
    [
        ("Univ Missouri, US Forest Serv, Columbia, MO, 65211, USA, USA.", "Columbia", "65211", "US"),
        ("Warsaw Univ Life Sci SGGW, Warsaw, Poland, Poland.", "Warsaw", "", "PL"),
        ("Bavarian State Inst Forestry, Freising, D-85354, Germany, Germany.", "Freising", "D-85354", "DE"),
        ("Singapore Univ Technol & Design, Singapore, Singapore", "Singapore", "", "SG"),  # a city-state
        ("Univ Tokyo, Tokyo 1138656, Japan.", "Tokyo", "1138656", "JP"),  # Core Collection: unchanged
        # a city named like its country, the country written once or twice
        ("Hosp Mubarak, Dept Surg, Kuwait, Kuwait.", "Kuwait", "", "KW"),
        ("Hosp Mubarak, Dept Surg, Kuwait, Kuwait, Kuwait.", "Kuwait", "", "KW"),
        # ... but the country twice after another city ("Mexico" also names Mexico City)
        ("Inst Ecol, Carretera 351, Xalapa, Veracruz, 91070, Mexico, Mexico.", "Xalapa", "91070", "MX"),
        # Zoological Record's "[long dash]", and a spaced country prefix
        ("Univ Bern, Baltzerstr 6, CH[long dash]3012 Bern, Switzerland.", "Bern", "CH-3012", "CH"),
        ("Leibniz Inst, Muggelseedamm 310, D - 12587 Berlin, Germany.", "Berlin", "D-12587", "DE"),
    ],
)
def test_normalise_entry(entry: str, city: str, postal: str, country: str) -> None:
    a = parse_c1(normalise_entry(entry))
    assert (a.city, a.postal_code, a.country) == (city, postal, country)


def test_core_collection_entries_are_left_as_they_are() -> None:
    entry = "Natl Appl Res Labs, 7F,26 Prosperity Rd 1,Sci Pk, Hsinchu 30078, Taiwan"
    assert normalise_entry(entry) is entry


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("Germany", "DE"),
        ("Peoples R China", "CN"),
        ("MA 02139 USA", "US"),
        ("CA", None),
        ("MO", None),
        ("Nowhere", None),
    ],
)
def test_named_country_never_reads_a_bare_code(text: str, code: str | None) -> None:
    assert named_country(text) == code
