"""The address grammar of formats/c1.py: one test per rule of issue 17 (era grammar, city-states,
organisation units, the postcode table, the prefecture rule, place-name abbreviations). Each
address is in the shape Web of Science exports it; the rules are general, these are examples."""

from __future__ import annotations

import pytest

from stclusters.load.formats.c1 import (
    Address,
    AddressError,
    expand_abbreviations,
    fits_postcode,
    is_organization_unit,
    parse_c1,
)


def parsed(entry: str) -> tuple[str, str, str, str]:
    a = parse_c1(entry)
    return a.city, a.postal_code, a.region, a.country


# ------------------------------------------------------------------ Hong Kong, Macao: city-states


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("Hong Kong Polytech Univ, Dept Comp, Hong Kong, Peoples R China.", ("Hong Kong", "", "", "HK")),
        ("Univ Hong Kong, Hong Kong, Peoples R China.", ("Hong Kong", "", "", "HK")),
        ("Univ Macau, Fac Sci & Technol, Macau, Peoples R China.", ("Macau", "", "", "MO")),
        ("Macau Univ Sci & Technol, Macao, Peoples R China.", ("Macau", "", "", "MO")),
        ("Univ Hong Kong, Dept Phys, Hong Kong.", ("Hong Kong", "", "", "HK")),
        # a known place of the city-state stays (it is inside it)
        ("Chinese Univ Hong Kong, Fac Engn, Shatin, Hong Kong, Peoples R China.", ("Shatin", "", "", "HK")),
        ("Natl Univ Singapore, Dept Phys, Singapore.", ("Singapore", "", "", "SG")),
    ],
)
def test_hong_kong_and_macao_are_city_states(entry: str, expected: tuple[str, ...]) -> None:
    assert parsed(entry) == expected


# ------------------------------------------------------------------ ISI-era US addresses


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("WASHINGTON UNIV,DEPT PHYS,ST LOUIS,MO.", ("ST LOUIS", "", "MO", "US")),
        ("UNIV MISSOURI,DEPT CHEM,COLUMBIA,MO 65201.", ("COLUMBIA", "65201", "MO", "US")),
        ("MIT,CAMBRIDGE,MA.", ("CAMBRIDGE", "", "MA", "US")),
        ("STANFORD UNIV,DEPT APPL PHYS,STANFORD,CA 94305, USA.", ("STANFORD", "94305", "CA", "US")),
        ("JOHNS HOPKINS UNIV,BALTIMORE,MD 21218.", ("BALTIMORE", "21218", "MD", "US")),
    ],
)
def test_isi_era_trailing_state_means_usa(entry: str, expected: tuple[str, ...]) -> None:
    assert parsed(entry) == expected


@pytest.mark.parametrize("entry", ["Univ X, Somewhere, QQ.", "Inst Y, Rabat, MR."])
def test_a_bare_two_letter_code_is_never_a_country(entry: str) -> None:
    with pytest.raises(AddressError, match="two-letter code"):
        parse_c1(entry)


def test_uk_is_a_real_two_letter_spelling() -> None:
    assert parsed("Univ Oxford, Oxford OX1 3PU, UK.") == ("Oxford", "OX1 3PU", "", "GB")


# ------------------------------------------------------------------ organisation units


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("Jinan Univ, Affiliated Hosp 1, Guangzhou, Peoples R China.", ("Guangzhou", "", "", "CN")),
        ("Zhengzhou Univ, Clin Med Coll 2, Zhengzhou, Peoples R China.", ("Zhengzhou", "", "", "CN")),
        ("Univ Gottingen, Phys Inst 2, Gottingen, Germany.", ("Gottingen", "", "", "DE")),
        ("CNRS, UPR 1524, Orsay, France.", ("Orsay", "", "", "FR")),
        ("Kyushu Univ, Dept Phys 3, Xyz Lab 12, Fukuoka 8190395, Japan.", ("Fukuoka", "8190395", "", "JP")),
    ],
)
def test_numbered_organisation_units_are_not_city_and_postcode(entry: str, expected: tuple[str, ...]) -> None:
    assert parsed(entry) == expected


def test_organisation_unit_words() -> None:
    assert is_organization_unit("Affiliated Hosp 1")
    assert is_organization_unit("UMR 5798")
    assert not is_organization_unit("Guangzhou")
    assert not is_organization_unit("Hsinchu Sci Pk")


# ------------------------------------------------------------------ the postcode table


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("Univ Tehran, Dept Phys, Tehran 1684613114, Iran.", ("Tehran", "1684613114", "", "IR")),
        ("Trinity Coll Dublin, Sch Phys, Dublin D02 PN40, Ireland.", ("Dublin", "D02 PN40", "", "IE")),
        ("Univ Copenhagen, Niels Bohr Inst, Copenhagen N, Denmark.", ("Copenhagen", "", "", "DK")),
        ("Aarhus Univ, Dept Phys, Aarhus C, Denmark.", ("Aarhus", "", "", "DK")),
        ("Univ Southern Denmark, Dept Biol, Odense M, Denmark.", ("Odense", "", "", "DK")),
        ("Univ Copenhagen, DK-2100 Copenhagen O, Denmark.", ("Copenhagen", "DK-2100", "", "DK")),
        ("Czech Tech Univ, Prague 12808 2, Czech Republic.", ("Prague", "12808", "", "CZ")),
        # a Japanese block number is not a postcode
        ("Osaka Univ, Inst Sci & Ind Res, 8-1 Mihogaoka, Ibaraki, Japan.", ("Ibaraki", "", "Ibaraki", "JP")),
        ("Univ Lisbon, Fac Sci, P-1749016 Lisbon, Portugal.", ("Lisbon", "P-1749016", "", "PT")),
        # a street or neighbourhood with the postcode, then the known city (or state named like one)
        (
            "Univ Isfahan, Dept Phys, Hezar Jerib 8174673441, Isfahan, Iran.",
            ("Isfahan", "8174673441", "", "IR"),
        ),
        (
            "Univ Sains Malaysia, Sch Phys, Minden 11800, Penang, Malaysia.",
            ("Penang", "11800", "Penang", "MY"),
        ),
        # a code of another shape does not drop a known city
        ("Sharif Univ Technol, Dept Elect Engn, Tehran 113659363, Iran.", ("Tehran", "113659363", "", "IR")),
        (
            "Katholieke Univ Leuven, Lab Aquat Ecol, Charles Deberiotstr 32, B-24393000 Leuven, Belgium.",
            ("Leuven", "B-24393000", "", "BE"),
        ),
        # an unknown "city" (a street with its number) gives way to a known city further on
        (
            "Univ Buenos Aires, Fac Agron, Av San Martin 4453, C1417DSE, Buenos Aires, Argentina.",
            ("Buenos Aires", "4453", "C1417DSE, Buenos Aires", "AR"),
        ),
        # Dutch postcode letters glued to the city
        ("TNO, Solar Technol & Applicat, Ae Eindhoven, Netherlands.", ("Eindhoven", "", "", "NL")),
    ],
)
def test_postcodes_by_country(entry: str, expected: tuple[str, ...]) -> None:
    assert parsed(entry) == expected


def test_postcode_shapes() -> None:
    assert fits_postcode("D-80333", "DE") and fits_postcode("1138656", "JP") and fits_postcode("113", "JP")
    assert not fits_postcode("8-1", "JP")
    assert not fits_postcode("1524", "FR")
    assert fits_postcode("anything", "ZZ")  # not in the table: any code


# ------------------------------------------------------------------ Japanese prefectures


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("Kyushu Univ, Dept Phys, Fukuoka, Japan.", ("Fukuoka", "", "Fukuoka", "JP")),
        ("Niigata Univ, Grad Sch Sci & Technol, Niigata, Niigata, Japan.", ("Niigata", "", "Niigata", "JP")),
        ("Hirosaki Univ, Fac Sci, Aomori, Aomori, Japan.", ("Aomori", "", "Aomori", "JP")),
        ("Shizuoka Univ, Fac Engn, Shizuoka, Japan.", ("Shizuoka", "", "Shizuoka", "JP")),
        # the city Ibaraki (Osaka prefecture) before its prefecture; the prefecture Ibaraki after Tsukuba
        (
            "Osaka Univ, Inst Sci & Ind Res, Ibaraki, Osaka 5670047, Japan.",
            ("Ibaraki", "5670047", "Osaka", "JP"),
        ),
        ("Natl Inst Mat Sci, Tsukuba, Ibaraki 3050044, Japan.", ("Tsukuba", "3050044", "Ibaraki", "JP")),
        ("Shizuoka Univ, Hamamatsu, Shizuoka 4328561, Japan.", ("Hamamatsu", "4328561", "Shizuoka", "JP")),
        ("Nagoya Univ, Grad Sch Engn, Nagoya, Aichi, Japan.", ("Nagoya", "", "Aichi", "JP")),
    ],
)
def test_prefecture_rule(entry: str, expected: tuple[str, ...]) -> None:
    assert parsed(entry) == expected


# ------------------------------------------------------------------ abbreviations of place names


@pytest.mark.parametrize(
    ("entry", "city"),
    [
        ("Purdue Univ, Dept Phys, W Lafayette, IN 47907 USA.", "West Lafayette"),
        ("Texas A&M Univ, Dept Chem, College Stn, TX 77843 USA.", "College Station"),
        ("Penn State Univ, University Pk, PA 16802 USA.", "University Park"),
        ("Penn State Univ, State Coll, PA 16801 USA.", "State College"),
        ("Google Inc, Mtn View, CA 94043 USA.", "Mountain View"),
        ("NOAA, Silver Spr, MD 20910 USA.", "Silver Spring"),
        ("Abbott Labs, N Chicago, IL 60064 USA.", "North Chicago"),
        ("Cent Michigan Univ, Mt Pleasant, MI 48859 USA.", "Mt Pleasant"),  # the literal name is known
    ],
)
def test_place_abbreviations_are_expanded_when_the_literal_is_unknown(entry: str, city: str) -> None:
    assert parse_c1(entry).city == city


def test_expand_abbreviations() -> None:
    assert expand_abbreviations("Yorktown Hts") == "Yorktown Heights"
    assert expand_abbreviations("N Chicago") == "North Chicago"


def test_address_fields_are_stable() -> None:
    assert parse_c1("KAIST, Daejeon 34141, South Korea.") == Address("KAIST", "Daejeon", "34141", "", "KR")


# ------------------------------------------------------------------ Zoological Record / BIOSIS layout


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (
            "Univ Missouri, US Forest Serv, 202 Nat Resources, Columbia, MO, 65211, USA, USA.",
            ("Columbia", "65211", "MO", "US"),
        ),
        (
            "Bavarian State Inst Forestry, Hans Carl v Carlowitz Pl 1, Freising, D-85354, Germany, Germany.",
            ("Freising", "D-85354", "", "DE"),
        ),
        (
            "US Geol Survey, Dept Biol Sci, Fayetteville, Arkansas 72701, USA, USA.",
            ("Fayetteville", "72701", "Arkansas", "US"),
        ),
        ("Warsaw Univ Life Sci SGGW, Lab X, Warsaw, Poland, Poland.", ("Warsaw", "", "", "PL")),
        # a state's name that is a city, with the state in the country part, is the city
        (
            "Mem Sloan Kettering Canc Ctr, Dept Urol, New York, NY 10021 USA.",
            ("New York", "10021", "NY", "US"),
        ),
        ("World Bank, Dev Res Grp, Washington, DC 20433 USA.", ("Washington", "20433", "DC", "US")),
        # a capital named like its country is not a repeated country
        ("Univ Luxembourg, Luxembourg, Luxembourg.", ("Luxembourg", "", "", "LU")),
    ],
)
def test_repeated_country_and_postcode_segments(entry: str, expected: tuple[str, ...]) -> None:
    assert parsed(entry) == expected


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("BORIS KIDRIC INST,ION PHYS LAB,YU-11000 BELGRADE,YUGOSLAVIA.", ("BELGRADE", "YU-11000", "", "RS")),
        ("RUDJER BOSKOVIC INST,ZAGREB,YUGOSLAVIA.", ("ZAGREB", "", "", "HR")),
        ("INST PHYS,KIEV,USSR.", ("KIEV", "", "", "UA")),
        ("KOMENSKY UNIV,BRATISLAVA,CZECHOSLOVAKIA.", ("BRATISLAVA", "", "", "SK")),
    ],
)
def test_historic_countries_are_read_as_the_successor_that_has_the_city(
    entry: str, expected: tuple[str, ...]
) -> None:
    assert parsed(entry) == expected


@pytest.mark.parametrize(
    ("entry", "city"),
    [
        ("Yeungnam Univ, Sch Business, Gyongsan, South Korea.", "Gyeongsan"),
        ("Korea Food Res Inst, Songnam, South Korea.", "Seongnam"),
        ("Hankyong Natl Univ, Ansung, South Korea.", "Anseong"),
        ("SK Hynix, Ichon, South Korea.", "Icheon"),
    ],
)
def test_korean_romanizations_are_tried_when_the_literal_is_unknown(entry: str, city: str) -> None:
    assert parse_c1(entry).city == city


@pytest.mark.parametrize(
    ("entry", "city"),
    [
        (
            "Univ Las Palmas Gran Canaria, Dept Biol, Las Palmas Gran Canaria, Spain.",
            "Las Palmas de Gran Canaria",
        ),
        ("Inst Nacl Pesquisas Espaciais, Sao Jose Campos, SP, Brazil.", "São José dos Campos"),
    ],
)
def test_particles_wos_drops_are_found_again(entry: str, city: str) -> None:
    assert parse_c1(entry).city == city


@pytest.mark.parametrize("entry", ["Nordberg, Eric J.", "Thompson, Frank R., III", "Walentowski, H."])
def test_an_author_name_in_c1_is_named_as_such(entry: str) -> None:
    with pytest.raises(AddressError, match="an author name, not an address"):
        parse_c1(entry)


@pytest.mark.parametrize("entry", ["Univ Narnia, Narnia.", "Univ Poseidon, Poseidonia, Atlantis."])
def test_an_unknown_country_stays_an_unknown_country(entry: str) -> None:
    with pytest.raises(AddressError, match=r"^unknown country"):
        parse_c1(entry)
