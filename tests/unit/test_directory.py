from __future__ import annotations

import pytest

from gnlc_core.directory import DirectoryError, load_csv, parse_rows
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
        ([row(contact_email="not-an-email")], r"line 2: contacts.0: value is not a valid email"),
        ([row(), row(name="Again")], r"line 3: duplicate city id 'kathmandu' \(first on line 2\)"),
        ([row(id="Kath Mandu")], r"line 2: id: String should match pattern"),
        ([row(contact_email="")], r"line 2: city 'kathmandu' has no contact_email"),
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
