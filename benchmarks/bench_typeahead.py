"""Typeahead benchmark: 100,000 people in PostgreSQL, queried through the selector the options API uses.

Run:  DATABASE_URL=postgres://... .venv/bin/python benchmarks/bench_typeahead.py [--people 100000] [--queries 600]
Writes benchmarks/results/typeahead.md. Uses its own organization and deletes it afterwards.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bastion_site.settings")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402

from accounts.models import Organization  # noqa: E402
from people.models import Person  # noqa: E402
from people.selectors import person_typeahead  # noqa: E402

GIVEN = [
    "Ava",
    "Marcus",
    "Priya",
    "Liam",
    "Sofia",
    "Noah",
    "Emma",
    "Yuki",
    "Omar",
    "Chloe",
    "Daniel",
    "Hannah",
    "Lucas",
    "Grace",
    "Mateo",
    "Zara",
    "Ethan",
    "Isabel",
    "Jonas",
    "Amara",
]
FAMILY = [
    "Chen",
    "Okafor",
    "Raman",
    "Novak",
    "Garcia",
    "Fischer",
    "Rossi",
    "Tanaka",
    "Haddad",
    "Dubois",
    "Kim",
    "Muller",
    "Silva",
    "OBrien",
    "Lopez",
    "Ahmed",
    "Walker",
    "Costa",
    "Berg",
    "Nwosu",
]
DEPARTMENTS = ["Legal", "Security", "Engineering", "Communications", "Finance", "Sales", "Marketing", "Support", "IT", "People", "Executive", "Product"]
TITLES = ["Engineer", "Manager", "Director", "Counsel", "Analyst", "Specialist", "Lead", "Officer", "Coordinator", "Architect"]


def populate(organization: Organization, count: int, rng: random.Random) -> None:
    batch = []
    for index in range(count):
        given, family = rng.choice(GIVEN), rng.choice(FAMILY)
        department, title = rng.choice(DEPARTMENTS), f"{rng.choice(['Senior ', '', 'Principal '])}{rng.choice(TITLES)}"
        email = f"{given}.{family}{index}@bench.example".lower()
        name = f"{given} {family} {index}"
        batch.append(
            Person(
                organization=organization,
                email=email,
                display_name=name,
                given_name=given,
                family_name=family,
                title=title,
                department=department,
                search_text=f"{name} {email} {title} {department}".lower(),
            )
        )
        if len(batch) == 5000:
            Person.objects.bulk_create(batch)
            batch = []
    if batch:
        Person.objects.bulk_create(batch)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE sync_person")


def queries(rng: random.Random, n: int) -> list[str]:
    """What people type: prefixes of names (2-6 letters), full names, emails, departments, numbers, two words."""
    made = []
    for _ in range(n):
        kind = rng.random()
        given, family = rng.choice(GIVEN).lower(), rng.choice(FAMILY).lower()
        if kind < 0.3:
            made.append(given[: rng.randint(2, len(given))])
        elif kind < 0.5:
            made.append(f"{given} {family[: rng.randint(1, len(family))]}")
        elif kind < 0.65:
            made.append(f"{given}.{family}{rng.randint(0, 99999)}")
        elif kind < 0.8:
            made.append(rng.choice(DEPARTMENTS).lower())
        elif kind < 0.9:
            made.append(str(rng.randint(0, 99999)))
        else:
            made.append(f"{rng.choice(['senior', 'principal'])} {rng.choice(DEPARTMENTS).lower()}")
    return made


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * p
    lower, upper = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lower] + (ordered[upper] - ordered[lower]) * (k - lower)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=600)
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "results" / "typeahead.md"))
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        raise SystemExit("Run the benchmark on PostgreSQL (set DATABASE_URL).")
    rng = random.Random(42)
    organization = Organization.objects.create(name="Typeahead benchmark", slug=f"bench-typeahead-{int(time.time())}")
    try:
        started = time.perf_counter()
        populate(organization, args.people, rng)
        load_seconds = time.perf_counter() - started
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_indexes WHERE indexname = 'forms_engine_person_search_trgm'")
            has_index = cursor.fetchone()[0] == 1
        workload = queries(rng, args.queries)
        for query in workload[:30]:  # warm the cache and the connection
            list(person_typeahead(organization=organization, query=query, limit=20))
        timings, hits = [], []
        for query in workload:
            start = time.perf_counter()
            results = list(person_typeahead(organization=organization, query=query, limit=20))
            timings.append((time.perf_counter() - start) * 1000)
            hits.append(len(results))
        p50, p95, p99 = percentile(timings, 0.5), percentile(timings, 0.95), percentile(timings, 0.99)
        slowest = sorted(zip(timings, workload, strict=True), reverse=True)[:5]
        with connection.cursor() as cursor:
            cursor.execute("SELECT version()")
            pg_version = cursor.fetchone()[0].split(",")[0]
        report = [
            "# Typeahead benchmark (people directory)",
            "",
            f"- People: {args.people:,} in one organization (bulk-created in {load_seconds:.1f} s), PostgreSQL: {pg_version}",
            "- Selector: `people.selectors.person_typeahead` (the options API's), limit 20, every word must appear in `search_text`",
            f"- Trigram GIN index on sync_person.search_text (migration forms_engine 0001): {'present' if has_index else 'MISSING'}",
            f"- Queries: {len(workload)} (name prefixes, full names, emails, departments, numbers, two-word queries); mean hits {statistics.mean(hits):.1f}",
            "",
            "| percentile | latency (ms) |",
            "|---|---|",
            f"| p50 | {p50:.2f} |",
            f"| p95 | {p95:.2f} |",
            f"| p99 | {p99:.2f} |",
            f"| max | {max(timings):.2f} |",
            "",
            "Slowest queries: " + ", ".join(f"`{q}` {t:.1f} ms" for t, q in slowest),
            "",
            f"Target: p95 well under 100 ms — {'met' if p95 < 100 else 'NOT met'}.",
            "",
        ]
        Path(args.output).write_text("\n".join(report))
        print("\n".join(report))
    finally:
        Person.objects.filter(organization=organization).delete()
        organization.delete()


if __name__ == "__main__":
    main()
