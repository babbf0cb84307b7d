"""Deterministic synthetic bookings (the reference rows) and invoices (the input rows).

Reference rows look like a booking table: a unique booking reference, a shipper (company names
from a pool of n/10 by default, skewed so that big shippers recur), an amount (log-normal, 2 decimals, a JSON
number as the CSV import stores it), a departure date (ISO, over three years) and a carrier. About
1% of rows are near-duplicates of an earlier row: an amended reference, a typo in the name, the
amount off by < 0.5%, the date off by a day.

Input rows are invoices: 80% copy a booking with realistic noise (a typo, another case, the amount as
"€1,234.50" or off by ~1%, the date off by a day or two), 15% match nothing in particular and 5%
are messy (a value missing, blank or unparseable).
"""

from __future__ import annotations

import math
import random
from datetime import date, timedelta
from typing import Any

from packmatch.domain.models import ReferenceRow


def _words(text: str) -> list[str]:
    return text.split()


PREFIXES = _words(
    "Atlas Nordic Pacific Global United Royal Summit Harbor Crescent Pioneer Sterling Evergreen "
    "Blue Silver Golden Iron Oak Maple Cedar Baltic Alpine Coastal Northern Southern Eastern "
    "Western Delta Orion Phoenix Titan Vector Zenith Apex Meridian Horizon Liberty Granite Falcon "
    "Eagle Lotus"
)
CORES = _words(
    "Acme Hansa Marlow Brandt Keller Novak Rossi Dubois Larsen Nakamura Okafor Silva Costa Weber "
    "Fischer Moreau Jansen Kowalski Horvat Petrov Lindqvist Andersen Murphy Walsh Schmidt Becker "
    "Vogel Richter Wolff Krause Hoffmann Schulz Bauer Koch Lang Berg Stein Brunner Graf Frank "
    "Hahn Kaiser Lorenz Roth Sommer Vos Bakker Visser Smit Mulder Dekker Meijer Bos Peters "
    "Hendriks"
)
TRADES = _words(
    "Logistics Shipping Freight Trading Supplies Foods Steel Textiles Chemicals Electronics "
    "Marine Transport Cargo Holdings Industries Partners Imports Exports Distribution Packaging "
    "Forwarding Containers Commodities Agro Pharma"
)
SUFFIXES = _words("GmbH Ltd Inc. LLC S.A. B.V. AG Co. Oy AB S.p.A. Pty SAS Kft")
CARRIERS = _words("Maersk MSC CMA-CGM COSCO Hapag-Lloyd ONE Evergreen HMM Yang-Ming ZIM PIL Wan-Hai")
FIRST_DAY = date(2022, 1, 1)
DAYS = 3 * 365


def company_pool(rng: random.Random, size: int) -> list[str]:
    """``size`` distinct names; past 100k, with a second family name (770k combinations without)."""
    names: set[str] = set()
    while len(names) < size:
        cores = [rng.choice(CORES)] + ([rng.choice(CORES)] if size > 100_000 else [])
        parts = (rng.choice(PREFIXES), *cores, rng.choice(TRADES), rng.choice(SUFFIXES))
        names.add(" ".join(parts))
    return sorted(names)


def typo(rng: random.Random, text: str) -> str:
    """One dropped, doubled or swapped letter."""
    at = rng.randrange(1, len(text) - 1)
    kind = rng.randrange(3)
    if kind == 0:
        return text[:at] + text[at + 1 :]
    if kind == 1:
        return text[:at] + text[at] + text[at:]
    return text[: at - 1] + text[at] + text[at - 1] + text[at + 1 :]


def shift_day(iso: str, days: int) -> str:
    return (date.fromisoformat(iso) + timedelta(days=days)).isoformat()


def bookings(count: int, seed: int, names: int | None = None) -> list[ReferenceRow]:
    """``count`` bookings; shippers from a pool of ``names`` (default: count / 10, at least 500)."""
    rng = random.Random(seed)
    pool = company_pool(rng, names or max(500, count // 10))
    rows: list[ReferenceRow] = []
    for i in range(count):
        if rows and rng.random() < 0.01:
            rows.append(_near_duplicate(rng, rows[rng.randrange(len(rows))], i))
            continue
        values = {
            "booking_reference": f"BK{i:08d}",
            "shipper": pool[int(len(pool) * rng.random() ** 2)],
            "amount": round(math.exp(rng.gauss(7.5, 1.3)), 2),
            "departure": (FIRST_DAY + timedelta(days=rng.randrange(DAYS))).isoformat(),
            "carrier": rng.choice(CARRIERS),
        }
        rows.append(ReferenceRow(f"row_{i}", values))
    return rows


def _near_duplicate(rng: random.Random, original: ReferenceRow, i: int) -> ReferenceRow:
    values = dict(original.values)
    values["booking_reference"] = f"{values['booking_reference']}-R{i % 7}"
    values["shipper"] = typo(rng, values["shipper"])
    values["amount"] = round(values["amount"] * rng.uniform(0.995, 1.005), 2)
    values["departure"] = shift_day(values["departure"], rng.choice([-1, 0, 1]))
    return ReferenceRow(f"row_{i}", values)


def invoices(rows: list[ReferenceRow], count: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    pool = company_pool(random.Random(seed + 1), 2000)
    made = []
    for _ in range(count):
        draw = rng.random()
        if draw < 0.80:
            made.append(_from_booking(rng, rows[rng.randrange(len(rows))]))
        elif draw < 0.95:
            made.append(_unrelated(rng, pool))
        else:
            made.append(_messy(rng, rows[rng.randrange(len(rows))]))
    return made


def _from_booking(rng: random.Random, row: ReferenceRow) -> dict[str, Any]:
    v = row.values
    name, amount, day = v["shipper"], v["amount"], v["departure"]
    if rng.random() < 0.3:
        name = typo(rng, name) if rng.random() < 0.6 else name.upper()
    if rng.random() < 0.3:
        amount = f"€{amount:,.2f}"
    elif rng.random() < 0.3:
        amount = round(amount * rng.uniform(0.99, 1.01), 2)
    if rng.random() < 0.3:
        day = shift_day(day, rng.choice([-2, -1, 1, 2]))
    reference = v["booking_reference"].lower() if rng.random() < 0.2 else v["booking_reference"]
    return {"booking_ref": reference, "counterparty": name, "total": amount, "ship_date": day}


def _unrelated(rng: random.Random, pool: list[str]) -> dict[str, Any]:
    return {
        "booking_ref": f"BK9{rng.randrange(10**8):08d}",
        "counterparty": rng.choice(pool),
        "total": round(math.exp(rng.gauss(7.5, 1.3)), 2),
        "ship_date": (FIRST_DAY + timedelta(days=rng.randrange(DAYS))).isoformat(),
    }


def _messy(rng: random.Random, row: ReferenceRow) -> dict[str, Any]:
    values = _from_booking(rng, row)
    field = rng.choice(list(values))
    values[field] = rng.choice([None, "", "n/a", "  "])
    return values
