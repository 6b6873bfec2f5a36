"""The order catalogue: the Flipkart orders SRMS knows, as a CSV file.

The bundled catalogue (``fhs_bulk/data/orders_catalogue.csv``, also ``samples/``) was made by
``generate`` with a fixed seed; tests and benchmarks make larger ones the same way.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterator
from datetime import date, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

from fhs_bulk import domain

COLUMNS = ["fk_order_id", "fsn", "service", "customer_name", "phone", "email", "address", "city", "state",
           "pincode", "brand", "preferred_date"]

_FIRST = ["Aarav", "Vivaan", "Aditya", "Ananya", "Diya", "Ishaan", "Kavya", "Rohan", "Saanvi", "Arjun", "Meera",
          "Priya", "Rahul", "Sneha", "Vikram", "Neha", "Karthik", "Lakshmi", "Imran", "Fatima", "Harpreet",
          "Suresh", "Divya", "Manoj", "Pooja", "Ravi", "Anjali", "Sandeep", "Nisha", "Gaurav"]
_LAST = ["Sharma", "Verma", "Iyer", "Nair", "Reddy", "Khan", "Singh", "Patel", "Gupta", "Das", "Menon", "Rao",
         "Joshi", "Kulkarni", "Banerjee", "Chatterjee", "Pillai", "Mehta", "Shetty", "Ghosh"]
# (city, state, pincode prefix)
_CITIES = [("Bengaluru", "Karnataka", "560"), ("Mumbai", "Maharashtra", "400"), ("Delhi", "Delhi", "110"),
           ("Hyderabad", "Telangana", "500"), ("Chennai", "Tamil Nadu", "600"), ("Kolkata", "West Bengal", "700"),
           ("Pune", "Maharashtra", "411"), ("Ahmedabad", "Gujarat", "380"), ("Jaipur", "Rajasthan", "302"),
           ("Lucknow", "Uttar Pradesh", "226"), ("Kochi", "Kerala", "682"), ("Bhopal", "Madhya Pradesh", "462")]
_STREETS = ["MG Road", "Church Street", "Park Street", "Linking Road", "Anna Salai", "Banjara Hills Road 12",
            "Sector 18", "Civil Lines", "Brigade Road", "FC Road", "Hazratganj", "Marine Drive"]
_BRANDS = {
    "SP TV": ["Samsung", "LG", "Sony", "Mi", "TCL"], "SP AC": ["Voltas", "Daikin", "LG", "Blue Star"],
    "SP WM": ["Whirlpool", "IFB", "Bosch", "Samsung"], "Geyser": ["Bajaj", "Havells", "AO Smith", "Racold"],
    "Fan Insta": ["Crompton", "Havells", "Orient", "Atomberg"], "Bed Insta": ["Wakefit", "Sleepyhead", "Perfect Homes"],
    "Wardrobe Installation": ["Godrej Interio", "Perfect Homes"], "TV Entertainment unit": ["Perfect Homes", "Wakefit"],
    "Office & Study chair": ["Green Soul", "Featherlite"], "Coffee & centre table assembly": ["Nilkamal", "Wakefit"],
    "Office & study table installation": ["Nilkamal", "Featherlite"], "Shoe rack setup installation": ["Nilkamal"],
    "Cycle Installation": ["Hero", "Btwin", "Hercules"], "APNA Complex": ["Flipkart"],
    "Mobile Repair": ["Samsung", "Apple", "Realme"], "Laptop Repair": ["HP", "Dell", "Lenovo"],
    "Water Purifier Service": ["Kent", "Aquaguard"], "Chimney Installation": ["Elica", "Faber"],
}
_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def order_id(rng: random.Random) -> str:
    return "OD" + str(rng.randrange(10**17, 10**18))


def fsn(rng: random.Random, ods: bool) -> str:
    prefix = "ODS" if ods else rng.choice(["TVS", "ACN", "WMN", "MOB", "FUR"])
    return prefix + "".join(rng.choice(_ALNUM) for _ in range(13))


def generate(n: int, seed: int = 7, *, start: date = date(2026, 11, 24),
             non_ods_every: int = 40, ineligible_every: int = 35) -> Iterator[dict[str, str]]:
    """Yield ``n`` realistic catalogue rows; every ``non_ods_every``-th has a non-ODS FSN and every
    ``ineligible_every``-th a service outside the bulk-eligible list."""
    rng = random.Random(seed)
    seen: set[str] = set()
    for i in range(n):
        oid = order_id(rng)
        while oid in seen:
            oid = order_id(rng)
        seen.add(oid)
        if ineligible_every and i % ineligible_every == ineligible_every - 1:
            service = rng.choice(domain.OTHER_SERVICES)
        else:
            service = rng.choice(domain.BULK_ELIGIBLE_SERVICES)
        ods = not (non_ods_every and i % non_ods_every == non_ods_every - 2)
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        city, state, pin = rng.choice(_CITIES)
        yield {
            "fk_order_id": oid,
            "fsn": fsn(rng, ods),
            "service": service,
            "customer_name": f"{first} {last}",
            "phone": str(rng.choice([6, 7, 8, 9])) + "".join(str(rng.randrange(10)) for _ in range(9)),
            "email": f"{first.lower()}.{last.lower()}{rng.randrange(10, 99)}@example.com",
            "address": f"{rng.randrange(1, 400)}, {rng.choice(_STREETS)}",
            "city": city,
            "state": state,
            "pincode": pin + f"{rng.randrange(1, 999):03d}",
            "brand": rng.choice(_BRANDS.get(service, ["Generic"])),
            "preferred_date": (start + timedelta(days=rng.randrange(0, 14))).isoformat()
            if rng.random() < 0.7 else "",
        }


def write(path: str | Path, rows: Iterator[dict[str, str]] | list[dict[str, str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return Path(path)


def bundled_path() -> Path:
    return Path(str(resources.files("fhs_bulk") / "data" / "orders_catalogue.csv"))


def load(path: str | Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in ("fk_order_id", "fsn", "service") if c not in (reader.fieldnames or [])]
        if missing:

            from fhs_bulk.errors import UsageError

            raise UsageError(f"{path}: the catalogue lacks the column(s) {', '.join(missing)}.", code="catalogue")
        return [{k: (row.get(k) or "").strip() for k in COLUMNS} for row in reader]


def open_store(db_path: str | Path, catalogue: str | Path | None = None) -> tuple[Any, int]:
    """The store at ``db_path`` with a catalogue: the given CSV, else the bundled one when the store has
    none. Returns (store, orders loaded now)."""
    from fhs_bulk.srms.mock.store import Store

    store = Store(db_path)
    if catalogue:
        loaded = store.load_catalogue(load(catalogue))
    elif not store.catalogue:
        loaded = store.load_catalogue(load(bundled_path()))
    else:
        loaded = 0
    return store, loaded
