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
    keep = ("openapi", "info", "servers", "swagger", "host", "basePath", "schemes", "consumes", "produces")
    result: dict[str, Any] = {k: document[k] for k in keep if k in document}
    result["paths"] = {p: item for p, item in document["paths"].items() if p in paths}
    pending, done = _refs(result["paths"], set()), set()
    while pending:
        pointer = pending.pop()
        # The whole component: #/components/<kind>/<name> (OpenAPI 3), #/definitions/<name> or #/parameters/<name> (Swagger 2.0).
        parts = pointer.lstrip("#/").split("/")
        parts = parts[:3] if parts[0] == "components" else parts[:2]
        root = "/".join(parts)
        if root in done:
            continue
        done.add(root)
        source, target = document, result
        for part in parts[:-1]:
            source, target = source.get(part) or {}, target.setdefault(part, {})
        # A reference the published document never defines (DocuSign's offlineAttributes) is kept as "anything".
        target[parts[-1]] = source.get(parts[-1], {"description": "Referenced but not defined in the published document."})
        pending |= _refs(target[parts[-1]], set())
    return result


def _read(source: Path) -> dict[str, Any]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(source.read_text(encoding="utf-8"), Loader=loader) if source.suffix in (".yaml", ".yml") else json.loads(source.read_text())


def _renamed(node: Any, prefix: str) -> Any:
    """Every local $ref `#/components/<kind>/<name>` as `#/components/<kind>/<prefix>.<name>`."""
    if isinstance(node, dict):
        renamed = {k: _renamed(v, prefix) for k, v in node.items()}
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/"):
            kind, name = ref.removeprefix("#/components/").split("/", 1)
            renamed["$ref"] = f"#/components/{kind}/{prefix}.{name}"
        return renamed
    if isinstance(node, list):
        return [_renamed(v, prefix) for v in node]
    return node


def merge(documents: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One document from a vendor's several files (Productboard publishes one per area, and their components share names
    with different content): each file's components are prefixed with the file's stem, a path may appear in one file only."""
    first = next(iter(documents.values()))
    merged: dict[str, Any] = {k: first[k] for k in ("openapi", "info", "servers") if k in first}
    merged["paths"], merged["components"] = {}, {}
    for stem, document in documents.items():
        document = _renamed(document, stem)
        for path, item in (document.get("paths") or {}).items():
            if path in merged["paths"]:
                raise SystemExit(f"{path} is in more than one file")
            merged["paths"][path] = item
        for kind, group in (document.get("components") or {}).items():
            for name, value in group.items():
                merged["components"].setdefault(kind, {})[f"{stem}.{name}"] = value
    return merged


def main(vendor: str) -> None:
    description = load(DESCRIPTIONS_DIR / f"{vendor}.yaml")
    sources = [SOURCE / name for name in description.spec_sources or (description.spec_source,)]
    document = _read(sources[0]) if len(sources) == 1 else merge({path.stem: _read(path) for path in sources})
    source = sources[0]
    wanted = {route.path for route in description.routes}
    missing = wanted - set(document["paths"])
    if missing:
        raise SystemExit(f"{vendor}: not paths in {source.name}: {sorted(missing)}")
    target = SPECS_DIR / description.spec_file
    target.write_text(json.dumps(cut(document, wanted), separators=(",", ":"), sort_keys=True) + "\n", encoding="utf-8")
    print(f"{target}: {len(wanted)} paths, {target.stat().st_size:,} bytes")


if __name__ == "__main__":
    main(sys.argv[1])
