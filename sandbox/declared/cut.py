"""Cut a declared vendor's published spec to the paths its description serves, into sandbox/specs/ (CI has no ../shared).

Run again when a description gains a route: python -m sandbox.declared.cut asana
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import yaml

from sandbox.declared import DESCRIPTIONS_DIR
from sandbox.declared.description import load
from sandbox.spec_check import SPECS_DIR

SOURCE = Path(os.environ.get("BASTION_VENDOR_SPECS", Path(__file__).resolve().parents[3] / "shared" / "vendor" / "specs"))


def _refs(node: Any, found: set[str]) -> set[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str) and node["$ref"].startswith("#/"):
            found.add(node["$ref"])
        for value in node.values():
            _refs(value, found)
    elif isinstance(node, list):
        for value in node:
            _refs(value, found)
    return found


def cut(document: dict[str, Any], paths: set[str]) -> dict[str, Any]:
    """The document with only `paths` (whole, every method) and every component their schemas reach."""
    result: dict[str, Any] = {k: document[k] for k in ("openapi", "info", "servers") if k in document}
    result["paths"] = {p: item for p, item in document["paths"].items() if p in paths}
    pending, done = _refs(result["paths"], set()), set()
    while pending:
        pointer = pending.pop()
        parts = pointer.lstrip("#/").split("/")[:3]  # the whole component: #/components/<kind>/<name>
        root = "/".join(parts)
        if root in done:
            continue
        done.add(root)
        value = document[parts[0]][parts[1]][parts[2]]
        result.setdefault(parts[0], {}).setdefault(parts[1], {})[parts[2]] = value
        pending |= _refs(value, set())
    return result


def main(vendor: str) -> None:
    description = load(DESCRIPTIONS_DIR / f"{vendor}.yaml")
    source = SOURCE / description.spec_source
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    document = yaml.load(source.read_text(encoding="utf-8"), Loader=loader) if source.suffix in (".yaml", ".yml") else json.loads(source.read_text())
    wanted = {route.path for route in description.routes}
    missing = wanted - set(document["paths"])
    if missing:
        raise SystemExit(f"{vendor}: not paths in {source.name}: {sorted(missing)}")
    target = SPECS_DIR / description.spec_file
    target.write_text(json.dumps(cut(document, wanted), separators=(",", ":"), sort_keys=True) + "\n", encoding="utf-8")
    print(f"{target}: {len(wanted)} paths, {target.stat().st_size:,} bytes")


if __name__ == "__main__":
    main(sys.argv[1])
