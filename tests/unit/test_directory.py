from __future__ import annotations

import pytest

from gnlc_core.directory import City, DirectoryError, load_csv, parse_rows, read_csv
from gnlc_core.events import Audience
from gnlc_core.settings import SAMPLE_DIRECTORY


def row(**overrides: str) -> dict[str, str]:
    base = {
        "id": "kathmandu",
        "name": "Kathmandu",
        "country": "np",
        "region": "Asia and the Pacific",
        "timezone": "Asia/Kathmandu",
        "language": "en",
        "contact_email": "lll@kathmandu.example.org",
    }
    return base | overrides


def test_sample_directory_loads() -> None:
    directory = load_csv(SAMPLE_DIRECTORY)
    assert len(directory) >= 25
    assert directory.by_id["kathmandu"].timezone == "Asia/Kathmandu"
    assert directory.by_id["aswan"].name.startswith("أسوان")


def test_country_is_normalised_and_contacts_split() -> None:
    city = parse_rows([row(contact_email="a@x.example.org; b@x.example.org")]).by_id["kathmandu"]
    assert city.country == "NP"
    assert city.contacts == ("a@x.example.org", "b@x.example.org")


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([row(timezone="Asia/Atlantis")], r"line 2: timezone: .*unknown IANA time zone"),
        ([row(contact_email="not-an-email")], r"line 2: contacts: 0: value is not a valid email"),
        (
            [row(), row(name="Again")],
            r"line 3: duplicate city id 'kathmandu' \(first on line 2\)",
        ),
        ([row(id="Kath Mandu")], r"line 2: id: String should match pattern"),
        ([row(contact_email="")], r"line 2: contact_email: no contact_email"),
        ([row(country="NPL")], r"line 2: country: String should have at most 2 characters"),
        ([row(name="x" * 201)], r"line 2: name: String should have at most 200 characters"),
    ],
)
def test_bad_rows_are_named(rows: list[dict[str, str]], message: str) -> None:
    with pytest.raises(DirectoryError, match=message):
        parse_rows(rows)


def test_resolve_audience_union_active_only() -> None:
    directory = load_csv(SAMPLE_DIRECTORY)
    everyone = directory.resolve(Audience(all_members=True))
    assert len(everyone) == len(directory)
    africa = directory.resolve(Audience(regions=("Africa",)))
    assert {c.region for c in africa} == {"Africa"}
    mixed = directory.resolve(Audience(regions=("Africa",), cities=("kathmandu", "durban")))
    assert [c.id for c in mixed].count("durban") == 1
    assert "kathmandu" in {c.id for c in mixed}
    inactive = parse_rows([row(active="false")])
    assert inactive.resolve(Audience(all_members=True)) == []


HEADER = "id,name,country,region,timezone,language,contact_email"
GOOD = "kathmandu,Kathmandu,NP,Asia and the Pacific,Asia/Kathmandu,en,a@k.example.org"


@pytest.mark.parametrize(
    ("text", "problems"),
    [
        ("", [((), "the file is empty")]),
        ("  \n\n", [((), "the file is empty")]),
        (HEADER + "\n", [((), "no cities: nothing to import")]),
        (GOOD + "\n", [(("line 1",), "the first line must be a header naming the columns")]),
        (
            HEADER.replace("timezone", "tz") + "\n" + GOOD + "\n",
            [(("line 1",), "missing column(s): timezone (unknown column(s): tz)")],
        ),
        (
            # every row's problems at once, in line order: a duplicate, a short row, a bad zone
            "\n".join(
                [
                    HEADER,
                    GOOD,
                    GOOD.replace(",Kathmandu,", ",Again,"),
                    "short,row",
                    GOOD.replace("kathmandu", "other").replace("Asia/Kathmandu", "Asia/Nowhere"),
                ]
            ),
            [
                (("line 3",), "duplicate city id 'kathmandu' (first on line 2)"),
                (("line 4",), "has 2 field(s); the header has 7"),
                (("line 5", "timezone"), "unknown IANA time zone 'Asia/Nowhere'"),
            ],
        ),
    ],
)
def test_csv_problems_are_all_reported_with_their_line(
    text: str, problems: list[tuple[tuple[str, ...], str]]
) -> None:
    with pytest.raises(DirectoryError) as raised:
        read_csv(text)
    found = raised.value.problems
    assert len(found) == len(problems), found
    for problem, (where, message) in zip(found, problems, strict=True):
        assert problem.where == where
        assert message in problem.msg


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_csv_delimiter_is_read_from_the_header(delimiter: str) -> None:
    text = f"{HEADER}\n{GOOD}\n".replace(",", delimiter)
    assert read_csv(text).by_id["kathmandu"].timezone == "Asia/Kathmandu"


def test_csv_rows_are_bounded() -> None:
    rows = [GOOD.replace("kathmandu", f"city-{n}", 1) for n in range(4)]
    with pytest.raises(DirectoryError, match="more than 3 cities"):
        read_csv("\n".join([HEADER, *rows]), limit=3)


# -- a city's languages in order of preference -----------------------------------------


@pytest.mark.parametrize(
    ("given", "language", "languages"),
    [
        ({"language": "fr"}, "fr", ("fr",)),  # one language, as before
        ({"language": "", "languages": "ar;fr"}, "ar", ("ar", "fr")),
        ({"language": "ar", "languages": "ar;fr"}, "ar", ("ar", "fr")),
        ({"language": "", "languages": " ar , fr "}, "ar", ("ar", "fr")),
        ({"language": "vi", "languages": "vi fr en"}, "vi", ("vi", "fr", "en")),
        ({"language": "fr", "languages": ""}, "fr", ("fr",)),
        ({"language": "fr-CA", "languages": "fr-CA;fr"}, "fr-CA", ("fr-CA", "fr")),
    ],
)
def test_a_row_gives_a_chain_or_one_language(
    given: dict[str, str], language: str, languages: tuple[str, ...]
) -> None:
    city = parse_rows([row(**given)]).by_id["kathmandu"]
    assert (city.language, city.languages) == (language, languages)


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"language": "fr", "languages": "ar;fr"}, "language 'fr' must be the first of languages"),
        ({"language": "", "languages": "fr-CA;ar;fr-ca"}, "lists a language twice"),
        ({"language": "", "languages": ""}, "give language (or languages"),
        ({"language": "", "languages": "ar;Fr_fr"}, "String should match pattern"),
        (
            {"language": "", "languages": "ar;fr;en;es;pt;ru"},
            "Tuple should have at most 5 items",
        ),
    ],
)
def test_a_bad_chain_is_named(given: dict[str, str], message: str) -> None:
    with pytest.raises(DirectoryError) as raised:
        parse_rows([row(**given)])
    assert any(message in p.msg for p in raised.value.problems), raised.value.problems
    assert all(p.where[0] == "line 2" for p in raised.value.problems)


@pytest.mark.parametrize(
    ("header", "values", "languages"),
    [
        (HEADER, "en", ("en",)),
        (HEADER.replace("language", "languages"), '"ar;fr"', ("ar", "fr")),
        (HEADER.replace("language", "language,languages"), 'ar,"ar,fr"', ("ar", "fr")),
        (HEADER.replace("language", "language,languages"), "en,", ("en",)),
    ],
)
def test_csv_takes_a_languages_column(header: str, values: str, languages: tuple[str, ...]) -> None:
    line = GOOD.replace(",en,", f",{values},")
    assert read_csv(f"{header}\n{line}\n").by_id["kathmandu"].languages == languages


def test_sample_directory_has_chains() -> None:
    directory = load_csv(SAMPLE_DIRECTORY)
    assert directory.by_id["chefchaouen"].languages == ("ar", "fr")
    assert directory.by_id["hue"].languages == ("vi", "fr")
    assert directory.by_id["durban"].languages == ("en",)


@pytest.mark.parametrize(
    "record",
    [
        # a record from before chains (the directory topic keeps the latest per city)
        '{"id":"hue","name":"Hue","country":"VN","region":"Asia and the Pacific",'
        '"timezone":"Asia/Ho_Chi_Minh","language":"vi","contacts":["a@hue.example.org"],'
        '"active":true}',
    ],
)
def test_old_directory_records_stay_readable(record: str) -> None:
    city = City.model_validate_json(record)
    assert city.languages == ("vi",)
    again = City.model_validate_json(city.model_dump_json())
    assert again == city


@pytest.mark.parametrize(
    ("value", "digest"),
    [(None, False), ("", False), ("yes", True), ("true", True), ("1", True), ("no", False)],
)
def test_a_city_asks_for_digests_in_an_optional_column(value: str | None, digest: bool) -> None:
    given = row() if value is None else row(digest=value)
    assert parse_rows([given]).by_id["kathmandu"].digest is digest


def test_a_bad_digest_value_is_named() -> None:
    with pytest.raises(DirectoryError, match="line 2: digest: "):
        parse_rows([row(digest="sometimes")])
    csv = "id,name,country,region,timezone,language,contact_email,digest\n"
    csv += "durban,Durban,ZA,Africa,Africa/Johannesburg,en,a@durban.example.org,yes\n"
    assert read_csv(csv).by_id["durban"].digest is True
    assert City.model_validate_json(read_csv(csv).cities[0].model_dump_json()).digest is True
