"""Compare two wire captures (tests/wire_capture.py) and print, per test, the requests that differ.

Usage: python scripts/wire_capture.py BEFORE.jsonl AFTER.jsonl [--only-common] [--max-lines N]
Exit status 0 when every test common to both captures sent the same requests, 1 otherwise.
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.wire_capture import Normaliser, id_like, server_tokens  # noqa: E402 - the plugin's normalisation, applied again to the raw requests

# A vendor's delivery to Bastion carries values the vendor chose, sometimes before its answer to the call that made them.
DELIVERY = re.compile(r"/(?:api/)?(?:web)?hooks/")
FIELDS = ("method", "url", "query", "raw_query", "headers", "body")


def load(path: Path, *, renormalise: bool = True) -> dict[str, list[dict[str, Any]]]:
    """Requests per test nodeid, in the order they were sent; normalised again from the raw request when it was kept."""
    by_test: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        entry = json.loads(line)
        by_test[entry["test"]].append(entry)
    for entries in by_test.values():
        entries.sort(key=lambda e: e.get("seq", 0))
        if renormalise:
            # Every value the test's servers answered with, whenever they answered: a delivery a sandbox thread sends
            # races the answers of the test's own calls, so learning in order would differ from run to run.
            # Only values a server said before any request of the test carried them: an echo of what the client sent (a
            # marker it chose) is not the server's choice, and causality makes that order the same in every run.
            normaliser = Normaliser()
            sent: set[str] = set()
            for entry in entries:
                if "raw" in entry and not DELIVERY.search(urlsplit(entry["raw"]["url"]).path):
                    raw = entry["raw"]
                    body = raw["body"] if isinstance(raw["body"], str) else ""
                    sent.update(server_tokens(" ".join([raw["url"], *raw["headers"].values(), body])))
                else:
                    normaliser.learn([token for token in entry.get("learned") or [] if token not in sent and id_like(token)])
            for entry in entries:
                if "raw" in entry:
                    entry.update(normaliser.entry(entry["raw"]))
        entries[:] = [e for e in entries if "learned" not in e]
    return {test: entries for test, entries in by_test.items() if entries}


def request_key(entry: dict[str, Any]) -> str:
    """One request as a canonical line (what the comparison compares)."""
    if "capture_error" in entry:
        return json.dumps({"capture_error": entry["capture_error"]})
    return json.dumps({name: entry.get(name) for name in FIELDS}, sort_keys=True, ensure_ascii=False)


def describe(entry: dict[str, Any]) -> str:
    return f"{entry.get('method')} {entry.get('url')}" + (f"?{entry['raw_query']}" if entry.get("raw_query") else "")


def field_diff(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Which fields of one request changed, with the values side by side."""
    lines = []
    for name in FIELDS:
        if before.get(name) != after.get(name):
            if name == "headers":
                old, new = before.get(name) or {}, after.get(name) or {}
                for header in sorted(set(old) | set(new), key=str.lower):
                    if old.get(header) != new.get(header):
                        lines.append(f"      header {header}: {old.get(header)!r} -> {new.get(header)!r}")
            else:
                lines.append(f"      {name}: {before.get(name)!r}\n        -> {after.get(name)!r}")
    return lines


def compare_test(before: list[dict[str, Any]], after: list[dict[str, Any]], *, strict_order: bool = False) -> list[str]:
    """Differences between one test's two request lists; [] when identical (in another order too, unless strict_order:
    concurrent calls such as bulk chunks and parallel steps are sent in a different order every run)."""
    old_keys, new_keys = [request_key(e) for e in before], [request_key(e) for e in after]
    if old_keys == new_keys:
        return []
    if sorted(old_keys) == sorted(new_keys):
        return [] if not strict_order else ["  same requests, different order"]
    lines: list[str] = []
    matcher = difflib.SequenceMatcher(a=old_keys, b=new_keys, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        if tag == "replace" and i2 - i1 == j2 - j1:
            for old, new in zip(before[i1:i2], after[j1:j2], strict=True):
                lines.append(f"  changed #{old.get('seq')}: {describe(old)}")
                lines.extend(field_diff(old, new))
            continue
        lines.extend(f"  only before #{e.get('seq')}: {describe(e)}" for e in before[i1:i2])
        lines.extend(f"  only after  #{e.get('seq')}: {describe(e)}" for e in after[j1:j2])
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--only-common", action="store_true", help="ignore tests present in one capture only")
    parser.add_argument("--as-recorded", action="store_true", help="compare the normalised fields as recorded, not renormalised")
    parser.add_argument("--strict-order", action="store_true", help="count the same requests in another order as a difference")
    parser.add_argument("--rename", action="append", default=[], metavar="OLD=NEW", help="a test renamed between the captures")
    parser.add_argument("--max-lines", type=int, default=40, help="lines printed per test (0: all)")
    args = parser.parse_args(argv)
    before, after = load(args.before, renormalise=not args.as_recorded), load(args.after, renormalise=not args.as_recorded)
    for pair in args.rename:
        old, new = pair.split("=", 1)
        if old in before:
            before[new] = before.pop(old)
    differing = 0
    for test in sorted(set(before) | set(after)):
        if test not in after or test not in before:
            if not args.only_common:
                side = "before" if test in before else "after"
                print(f"{test}: only in {side} ({len((before if test in before else after)[test])} requests)")
            continue
        lines = compare_test(before[test], after[test], strict_order=args.strict_order)
        if lines:
            differing += 1
            shown = lines if not args.max_lines else lines[: args.max_lines]
            print(f"{test}: {len(before[test])} -> {len(after[test])} requests")
            print("\n".join(shown))
            if len(shown) < len(lines):
                print(f"  … {len(lines) - len(shown)} more lines")
    common = set(before) & set(after)
    requests = sum(len(before[t]) for t in common)
    print(
        f"\n{len(common)} tests in both captures ({requests} requests before); {differing} differ; "
        f"{len(set(before) - set(after))} only before, {len(set(after) - set(before))} only after."
    )
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
