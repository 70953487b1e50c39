"""Each benchmark's headline rows (what a user waits for, now, the reference measured in the same run, goal, verdict)."""

from __future__ import annotations

import json
import os
from pathlib import Path

HERE = Path(__file__).resolve().parent


def results_dir() -> Path:
    return Path(os.environ.get("BENCH_RESULTS_DIR") or HERE / "results")


def write_summary(name: str, rows: list[dict[str, str]]) -> None:
    """Rows for the table at the top of RESULTS.md: keys what, now, reference, goal, verdict (markdown text)."""
    out = results_dir() / f"{name}.summary.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=1, ensure_ascii=False))


def verdict(ok: bool) -> str:
    return "met" if ok else "**not met**"
