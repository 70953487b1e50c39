"""Assemble benchmarks/RESULTS.md from the per-benchmark result files in benchmarks/results/."""

from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    parts = [
        "# Benchmark results",
        "",
        "Produced by `make bench` (scripts/bench.sh). Each section compares Bastion with a reference measured in the same run.",
        "",
    ]
    for result in sorted((HERE / "results").glob("*.md")):
        parts.append(result.read_text().strip())
        parts.append("")
    (HERE / "RESULTS.md").write_text("\n".join(parts))


if __name__ == "__main__":
    main()
