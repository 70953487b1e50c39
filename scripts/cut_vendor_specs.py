"""Cut the vendors' published specs (../shared/vendor/specs) to the operations the sandbox serves, into sandbox/specs/.

Keeps each kept path whole (every method) and every component its schemas reach, so sandbox/spec_check.py can check
requests and answers wherever the tests run. Run again when a stand-in grows a route: python scripts/cut_vendor_specs.py
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SOURCE = Path(os.environ.get("BASTION_VENDOR_SPECS", ROOT.parent / "shared" / "vendor" / "specs"))
SOURCES = {
    "jira": "jira_cloud_platform_swagger-v3.v3.json",
    "pagerduty": "pagerduty_rest_openapiv3.json",
    "twilio": "twilio_api_v2010.json",
    "statuspage": "statuspage_openapi3.json",
    "okta": "okta_management-minimal.yaml",
    "slack": "slack_web_openapi_v2.json",
    "google_calendar": "google_calendar.v3.json",
    "google_sheets": "google_sheets.v4.json",
    "google_drive": "google_drive.v3.json",
}


def load(path: Path) -> dict[str, Any]:
    if path.suffix in (".yaml", ".yml"):
        import yaml

        return yaml.load(path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    return json.loads(path.read_text(encoding="utf-8"))


def sandbox_paths(vendor: str) -> list[str]:
    """The stand-in's routes for `vendor`, as concrete sample paths in the spec's terms."""
    from sandbox.server import create_app
    from sandbox.spec_check import VENDORS, Spec

    definition = VENDORS[vendor]
    probe = Spec.__new__(Spec)
    probe.definition = definition
    samples = []
    for rule in create_app().url_map.iter_rules():
        if not rule.rule.startswith(f"/{vendor}/"):
            continue
        concrete = re.sub(r"<(?:[^:>]+:)?([^>]+)>", "x1", rule.rule)
        spec_path = probe.spec_path(concrete)
        if spec_path is None:
            continue
        if vendor == "slack" and spec_path == "/x1":
            from sandbox.vendors.slack import METHODS

            samples += [f"/{method}" for method in METHODS]
            continue
        samples.append(spec_path)
    return samples


def refs(node: Any, found: set[str]) -> set[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str) and node["$ref"].startswith("#/"):
            found.add(node["$ref"])
        for value in node.values():
            refs(value, found)
    elif isinstance(node, list):
        for value in node:
            refs(value, found)
    return found


def pointer_get(document: dict[str, Any], pointer: str) -> Any:
    node: Any = document
    for part in pointer.lstrip("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def pointer_set(target: dict[str, Any], pointer: str, value: Any) -> None:
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.lstrip("#/").split("/")]
    node = target
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def cut(vendor: str, document: dict[str, Any]) -> dict[str, Any]:
    if vendor in ("google_calendar", "google_sheets", "google_drive"):
        return document  # small already; the discovery format is converted when loaded
    samples = sandbox_paths(vendor)
    kept: dict[str, Any] = {}
    for template, item in (document.get("paths") or {}).items():
        pattern = re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$")
        if any(pattern.match(sample) for sample in samples):
            kept[template] = item
    result: dict[str, Any] = {k: document[k] for k in ("openapi", "swagger", "info", "basePath") if k in document}
    result["paths"] = kept
    pending = refs(kept, set())
    done: set[str] = set()
    while pending:
        pointer = pending.pop()
        if pointer in done:
            continue
        done.add(pointer)
        # Copy the whole component a pointer lands in (#/components/schemas/X, #/definitions/X), even when it points inside it.
        parts = pointer.lstrip("#/").split("/")
        root = "#/" + "/".join(parts[:3] if parts[0] == "components" else parts[:2])
        if root in done and root != pointer:
            continue
        done.add(root)
        value = pointer_get(document, root)
        pointer_set(result, root, value)
        pending |= refs(value, set()) - done
    return result


def main() -> None:
    target = ROOT / "sandbox" / "specs"
    target.mkdir(exist_ok=True)
    for vendor, name in SOURCES.items():
        document = cut(vendor, load(SOURCE / name))
        out = target / f"{vendor}.json"
        out.write_text(json.dumps(document, separators=(",", ":"), sort_keys=True), encoding="utf-8")
        print(f"{vendor}: {len(document.get('paths') or document.get('resources') or {})} paths, {out.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
