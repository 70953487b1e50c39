"""Assemble benchmarks/RESULTS.md from the per-benchmark result files in benchmarks/results/."""

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
# The order of the headline table: the table, then the scale simulation.
SUMMARY_ORDER = ("directory", "sync", "webhooks", "activation", "activation_demo", "scale")


def summary_table(results: Path) -> list[str]:
    rows = []
    found = {p.name.removesuffix(".summary.json"): p for p in results.glob("*.summary.json")}
    for name in [*SUMMARY_ORDER, *sorted(set(found) - set(SUMMARY_ORDER))]:
        if name in found:
            rows += json.loads(found[name].read_text())
    if not rows:
        return []
    lines = [
        "## What a user waits for, beside its reference in the same run",
        "",
        "| What a user waits for | Now | Reference, same run | Goal | |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {r['what']} | {r['now']} | {r['reference']} | {r['goal']} | {r['verdict']} |" for r in rows]
    return [*lines, "", "Each figure's conditions, and why a goal is not met where it is not, are in the sections below.", ""]


def main() -> None:
    results = HERE / "results"
    parts = [
        "# Benchmark results",
        "",
        "Produced by `make bench` (scripts/bench.sh). Each section compares Bastion with a reference measured in the same run.",
        "",
        *summary_table(results),
    ]
    for result in sorted(results.glob("*.md")):
        parts.append(result.read_text().strip())
        parts.append("")
    (HERE / "RESULTS.md").write_text("\n".join(parts))


if __name__ == "__main__":
    main()
