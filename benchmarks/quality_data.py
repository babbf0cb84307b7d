"""Deterministic people and companies with known truth, and their corrupted copies (quality.py).

Reference rows are clean records; input rows are copies of some of them (the truth), corrupted as
hand-typed or OCR'd documents are, plus rows of people or companies that are not in the reference
at all. Every level draws from the same clean records with the same seed, so levels differ only
in how messy the copies are.

People: ``given_name``, ``surname``, ``date_of_birth`` (ISO), ``street``, ``city``, ``postcode``
and a near-unique ``person_id`` (9 digits). Companies: ``company`` (name + legal form), ``street``,
``city``, ``postcode``, ``founded`` (ISO) and ``vat_id``. Name pools are small on purpose, so that
different people share names (and some share a name *and* a city).

Corruptions (per field, with the level's rates): a typo (substitution, deletion, insertion or an
adjacent transposition, up to three in the hardest level), a blank, a nickname for a given name, a
given name and surname swapped, transposed digits in an identifier or postcode, day and month
swapped in a date, a date a year or a few days off, a company's legal form dropped or abbreviated.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any


def _words(text: str) -> list[str]:
    return text.split()


GIVEN = _words(
    "James John Robert Michael William David Richard Joseph Thomas Charles Christopher Daniel Matthew "
    "Anthony Mark Donald Steven Paul Andrew Joshua Kenneth Kevin Brian George Timothy Ronald Edward "
    "Jason Jeffrey Ryan Jacob Gary Nicholas Eric Jonathan Stephen Larry Justin Scott Brandon Benjamin "
    "Samuel Gregory Alexander Patrick Frank Raymond Jack Dennis Jerry Mary Patricia Jennifer Linda "
    "Elizabeth Barbara Susan Jessica Sarah Karen Lisa Nancy Betty Margaret Sandra Ashley Kimberly "
    "Emily Donna Michelle Carol Amanda Dorothy Melissa Deborah Stephanie Rebecca Sharon Laura Cynthia "
    "Kathleen Amy Angela Shirley Anna Brenda Pamela Emma Nicole Helen Samantha Katherine Christine "
    "Debra Rachel Carolyn Janet Catherine Maria Heather Diane Ruth Julie Olivia Joyce Virginia Victoria"
)
NICKNAMES = {
    "James": "Jim", "John": "Jack", "Robert": "Bob", "Michael": "Mike", "William": "Bill",
    "David": "Dave", "Richard": "Rick", "Joseph": "Joe", "Thomas": "Tom", "Charles": "Charlie",
    "Christopher": "Chris", "Daniel": "Dan", "Matthew": "Matt", "Anthony": "Tony", "Steven": "Steve",
    "Andrew": "Andy", "Kenneth": "Ken", "Timothy": "Tim", "Edward": "Ed", "Nicholas": "Nick",
    "Jonathan": "Jon", "Benjamin": "Ben", "Samuel": "Sam", "Alexander": "Alex", "Patrick": "Pat",
    "Elizabeth": "Liz", "Patricia": "Pat", "Jennifer": "Jen", "Margaret": "Maggie", "Kimberly": "Kim",
    "Deborah": "Debbie", "Rebecca": "Becky", "Katherine": "Kate", "Catherine": "Cathy",
    "Victoria": "Vicky", "Samantha": "Sam", "Stephanie": "Steph", "Susan": "Sue", "Pamela": "Pam",
}  # fmt: skip
SURNAMES = _words(
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez Gonzalez "
    "Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris Sanchez Clark "
    "Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill Flores Green Adams "
    "Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts Gomez Phillips Evans Turner Diaz Parker "
    "Cruz Edwards Collins Reyes Stewart Morris Morales Murphy Cook Rogers Gutierrez Ortiz Morgan Cooper "
    "Peterson Bailey Reed Kelly Howard Ramos Kim Cox Ward Richardson Watson Brooks Chavez Wood James "
    "Bennett Gray Mendoza Ruiz Hughes Price Alvarez Castillo Sanders Patel Myers Long Ross Foster "
    "Jimenez Powell Jenkins Perry Russell Sullivan Bell Coleman Butler Henderson Barnes Gonzales Fisher "
    "Vasquez Simmons Romero Jordan Patterson Alexander Hamilton Graham Reynolds Griffin Wallace Moreno "
    "West Cole Hayes Bryant Herrera Gibson Ellis Tran Medina Aguilar Stevens Murray Ford Castro Marshall "
    "Owens Harrison Fernandez McDonald Woods Washington Kennedy Wells Vargas Henry Chen Freeman Webb "
    "Tucker Guzman Burns Crawford Olson Simpson Porter Hunter Gordon Mendez Silva Shaw Snyder Mason "
    "Dixon Munoz Hunt Hicks Holmes Palmer Wagner Black Robertson Boyd Rose Stone Salazar Fox Warren"
)
CITIES = _words(
    "Springfield Riverside Franklin Greenville Bristol Clinton Fairview Salem Madison Georgetown "
    "Arlington Ashland Burlington Manchester Milton Newport Oxford Winchester Dayton Lexington "
    "Auburn Dover Hudson Jackson Kingston Lebanon Marion Milford Oakland Richmond"
)
STREETS = _words(
    "Main Oak Pine Maple Cedar Elm Washington Lake Hill Park Church High Mill Bridge Station North "
    "South Spring River Forest Meadow Sunset Highland Chestnut Willow"
)
STREET_KINDS = ("Street", "Road", "Avenue", "Lane", "Drive")
COMPANY_WORDS = _words(
    "Atlas Nordic Pacific Global United Royal Summit Harbor Crescent Pioneer Sterling Evergreen Blue "
    "Silver Golden Iron Oak Maple Cedar Baltic Alpine Coastal Northern Delta Orion Phoenix Titan "
    "Vector Zenith Apex Meridian Horizon Liberty Granite Falcon Eagle Lotus Acme Hansa Marlow Brandt"
)
COMPANY_TRADES = _words(
    "Logistics Freight Shipping Trading Foods Textiles Machinery Chemicals Energy Software Consulting "
    "Construction Holdings Partners Industries Systems Supplies Metals Pharma Media"
)
LEGAL_FORMS = {"Limited": "Ltd", "Incorporated": "Inc", "GmbH": "GmbH", "Corporation": "Corp"}

KINDS = ("people", "companies")


@dataclass(frozen=True)
class Level:
    """Per-field corruption rates of one difficulty level."""

    name: str
    typo: float  # per text field: one typo (or more, up to max_typos)
    max_typos: int
    blank: float  # per field: left empty
    nickname: float  # given names only
    name_swap: float  # given name and surname swapped
    digits: float  # identifier or postcode: two adjacent digits transposed
    day_month: float  # a date with day and month swapped
    date_off: float  # a date a few days or a year off
    moved: float  # street, city and postcode of another address


LEVELS = {
    "easy": Level("easy", 0.05, 1, 0.02, 0.03, 0.01, 0.02, 0.02, 0.01, 0.02),
    "medium": Level("medium", 0.15, 2, 0.08, 0.10, 0.04, 0.06, 0.06, 0.03, 0.06),
    "hard": Level("hard", 0.30, 3, 0.15, 0.20, 0.08, 0.12, 0.12, 0.06, 0.12),
}


@dataclass(frozen=True)
class Dataset:
    """Reference rows (each with an ``id``), input rows and the truth: input index → reference id."""

    kind: str
    level: str
    with_id: bool
    reference: list[dict[str, Any]]
    inputs: list[dict[str, Any]]
    truth: list[str | None]

    @property
    def fields(self) -> list[str]:
        return [key for key in self.reference[0] if key != "id"]


def generate(kind: str, level: str, size: int, *, with_id: bool, seed: int = 16) -> Dataset:
    """``size`` reference rows; input rows: 90% of them corrupted (in random order), plus 10% of
    ``size`` rows of others who are not in the reference."""
    rng = random.Random(f"{kind}-{seed}")
    make = _person if kind == "people" else _company
    clean = [make(rng) for _ in range(size + size // 10)]
    reference = [{"id": f"r{i}", **record} for i, record in enumerate(clean[:size])]
    corrupt = random.Random(f"{kind}-{seed}-{level}")
    picked = sorted(corrupt.sample(range(size), k=size * 9 // 10))
    pairs: list[tuple[dict[str, Any], str | None]] = [
        (_corrupt(corrupt, kind, clean[i], LEVELS[level]), f"r{i}") for i in picked
    ]
    pairs += [(_corrupt(corrupt, kind, record, LEVELS[level]), None) for record in clean[size:]]
    corrupt.shuffle(pairs)
    key = "person_id" if kind == "people" else "vat_id"
    if not with_id:
        reference = [{k: v for k, v in row.items() if k != key} for row in reference]
        pairs = [({k: v for k, v in row.items() if k != key}, truth) for row, truth in pairs]
    return Dataset(kind, level, with_id, reference, [row for row, _ in pairs], [truth for _, truth in pairs])


def _address(rng: random.Random) -> dict[str, str]:
    return {
        "street": f"{rng.randint(1, 250)} {rng.choice(STREETS)} {rng.choice(STREET_KINDS)}",
        "city": rng.choice(CITIES),
        "postcode": f"{rng.randint(10000, 99999)}",
    }


def _day(rng: random.Random, first: date, years: int) -> str:
    return (first + timedelta(days=rng.randrange(365 * years))).isoformat()


def _person(rng: random.Random) -> dict[str, Any]:
    return {
        "given_name": rng.choice(GIVEN),
        "surname": rng.choice(SURNAMES),
        "date_of_birth": _day(rng, date(1940, 1, 1), 65),
        **_address(rng),
        "person_id": f"{rng.randint(100_000_000, 999_999_999)}",
    }


def _company(rng: random.Random) -> dict[str, Any]:
    form = rng.choice(list(LEGAL_FORMS))
    return {
        "company": f"{rng.choice(COMPANY_WORDS)} {rng.choice(COMPANY_TRADES)} {form}",
        **_address(rng),
        "founded": _day(rng, date(1950, 1, 1), 70),
        "vat_id": f"GB{rng.randint(100_000_000, 999_999_999)}",
    }


def _corrupt(rng: random.Random, kind: str, record: dict[str, Any], level: Level) -> dict[str, Any]:
    row = dict(record)
    if rng.random() < level.moved:
        row.update(_address(rng))
    if kind == "people":
        if rng.random() < level.nickname and row["given_name"] in NICKNAMES:
            row["given_name"] = NICKNAMES[row["given_name"]]
        if rng.random() < level.name_swap:
            row["given_name"], row["surname"] = row["surname"], row["given_name"]
    else:
        row["company"] = _legal_form(rng, row["company"], level)
    for field in row:
        row[field] = _field(rng, field, row[field], level)
    return row


def _legal_form(rng: random.Random, name: str, level: Level) -> str:
    words = name.split()
    if rng.random() < level.nickname:
        long_form = words[-1]
        words[-1] = LEGAL_FORMS[long_form] if rng.random() < 0.7 else ""
    return " ".join(word for word in words if word)


def _field(rng: random.Random, field: str, value: str, level: Level) -> str:
    if rng.random() < level.blank:
        return ""
    if field in ("date_of_birth", "founded"):
        return _date(rng, value, level)
    if field in ("person_id", "vat_id", "postcode"):
        if rng.random() < level.digits:
            value = _transpose(rng, value)
        return typo(rng, value) if rng.random() < level.typo / 3 else value
    if rng.random() < level.typo:
        for _ in range(rng.randint(1, level.max_typos)):
            value = typo(rng, value)
    return value.upper() if rng.random() < 0.1 else value


def _date(rng: random.Random, iso: str, level: Level) -> str:
    day = date.fromisoformat(iso)
    if rng.random() < level.day_month and day.day <= 12 and day.day != day.month:
        day = day.replace(month=day.day, day=day.month)
    if rng.random() < level.date_off:
        try:
            day = day.replace(year=day.year + rng.choice((-1, 1)))
        except ValueError:
            day = day + timedelta(days=rng.choice((-3, -1, 1, 3)))
    return day.isoformat()


def _transpose(rng: random.Random, text: str) -> str:
    i = rng.randrange(len(text) - 1)
    return text[:i] + text[i + 1] + text[i] + text[i + 2 :]


def typo(rng: random.Random, text: str) -> str:
    """One keyboard mistake: substitution, deletion, insertion or adjacent transposition."""
    if len(text) < 3:
        return text
    i = rng.randrange(1, len(text) - 1)
    letter = rng.choice("abcdefghijklmnopqrstuvwxyz" if not text[i].isdigit() else "0123456789")
    kind = rng.randrange(4)
    if kind == 0:
        return text[:i] + letter + text[i + 1 :]
    if kind == 1:
        return text[:i] + text[i + 1 :]
    if kind == 2:
        return text[:i] + letter + text[i:]
    return _transpose(rng, text)
