"""Cut Microsoft Graph v1.0's published descriptions to the operations the microsoft365 stand-in serves: sandbox/specs/microsoft365.json.

Sources (../shared/vendor/specs, see INDEX.md): the PowerShell SDK's per-module OpenAPI files (msgraph_v1.0_powershell_openApiDocs/*.yml)
give paths, parameters and schemas. What they lack (Excel `workbook` paths, the SDK-core-only event delta functions) is taken from
msgraph_v1.0_sdk_endpoints_subset.json, the official Python SDK's URL-template inventory: those operations carry the templates'
methods and required query parameters only (no schemas: the inventory names its models without defining them), each marked
`x-bastion-source`. Served paths are mapped with sandbox/spec_check.py's rewrites (/me → /users/{id}, unprefixed action names).
Run again when the stand-in grows a route: python scripts/cut_microsoft365_spec.py
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.cut_vendor_specs import SOURCE, load, pointer_get, pointer_set, refs, sandbox_paths  # noqa: E402

VENDOR = "microsoft365"
MODULES = ("Users", "Users.Actions", "Groups", "Teams", "Calendar", "CloudCommunications", "Files", "Sites", "ChangeNotifications")
INVENTORY = "msgraph_v1.0_sdk_endpoints_subset.json"
CSDL = "msgraph_v1.0_cleanMetadata.xml"
# SDK-inventory actions whose request body is defined from the CSDL: template suffix → (action name, binding parameter type).
CSDL_ACTIONS = {
    "/workbook/tables/{workbookTable-id}/rows/add": ("add", "Collection(graph.workbookTableRow)"),
    "/workbook/createSession": ("createSession", "graph.workbook"),
}
EDM = {"Edm.Int32": "integer", "Edm.Int64": "integer", "Edm.Boolean": "boolean", "Edm.String": "string", "Edm.Double": "number"}
# Routes whose last segment is a function call the URL map cannot spell (<call>): sample them in the spec's terms.
CALL_SAMPLES = (
    "/drives/x1/items/x1/microsoft.graph.search(q='x1')",
    "/drives/x1/root/microsoft.graph.search(q='x1')",
    "/drives/me-drive/root/microsoft.graph.search(q='x1')",
    "/drives/x1/items/x1/workbook/worksheets/x1/range(address='x1')",
    "/drives/x1/items/x1/workbook/worksheets/x1/usedRange()",
)
DROP = ("description", "example", "examples", "x-ms-docs-operation-type", "x-ms-docs-grouped-path", "externalDocs", "x-ms-pageable", "x-ms-docs-key-type")


def pattern(template: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$")


def strip(node: Any, in_properties: bool = False) -> Any:
    """Descriptions and examples out (the check needs paths, parameters and schemas only), and the generator's open-type marker.

    Every schema part carries `additionalProperties: {type: object}` ("open type"); inside `allOf` JSON Schema would read it as
    "every property not declared in this part must be an object", refusing each inherited property, so it is dropped.
    """
    if isinstance(node, dict):
        return {
            k: strip(v, k == "properties" and not in_properties)
            for k, v in node.items()
            if in_properties or (k not in DROP and not (k == "additionalProperties" and v == {"type": "object"}))
        }
    if isinstance(node, list):
        return [strip(v) for v in node]
    return node


def cut_module(document: dict[str, Any], samples: list[str], result: dict[str, Any]) -> set[str]:
    matched: set[str] = set()
    kept = {}
    for template, item in (document.get("paths") or {}).items():
        hits = {s for s in samples if pattern(template).match(s)}
        if hits:
            kept[template] = item
            matched |= hits
    result["paths"].update(kept)
    pending, done = refs(kept, set()), set()
    while pending:
        pointer = pending.pop()
        parts = pointer.lstrip("#/").split("/")
        root = "#/" + "/".join(parts[:3])
        if root in done:
            continue
        done.add(root)
        value = pointer_get(document, root)
        pointer_set(result, root, value)
        pending |= refs(value, set()) - done
    return matched


def csdl_body(action: str, binding: str) -> dict[str, Any] | None:
    """The JSON body schema of a bound action from its CSDL parameters (Nullable="false" ones required and not null)."""
    import xml.etree.ElementTree as ET

    namespace = "{http://docs.oasis-open.org/odata/ns/edm}"
    for node in ET.parse(SOURCE / CSDL).iter(f"{namespace}Action"):
        parameters = node.findall(f"{namespace}Parameter")
        if node.get("Name") != action or not parameters or parameters[0].get("Type") != binding:
            continue
        properties: dict[str, Any] = {}
        required = []
        for parameter in parameters[1:]:
            kind = EDM.get(parameter.get("Type", ""))
            strict = parameter.get("Nullable") == "false"
            properties[parameter.get("Name")] = {} if kind is None else {"type": kind if strict else [kind, "null"]}
            if strict:
                required.append(parameter.get("Name"))
        return {"type": "object", "properties": properties, **({"required": required} if required else {}), "x-bastion-source": f"{CSDL} Action {action}"}
    return None


def from_inventory(samples: list[str], rewrites: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    """Operations for served paths no module file describes, from the SDK's URL templates (rewritten like served paths are)."""
    inventory = json.loads((SOURCE / INVENTORY).read_text(encoding="utf-8"))["endpoints"]
    paths: dict[str, Any] = {}
    for template, entry in inventory.items():
        spec_template = template
        for regex, replacement in rewrites:
            spec_template = re.sub(regex, replacement, spec_template)
        if not any(pattern(spec_template).match(s) for s in samples):
            continue
        item: dict[str, Any] = {"x-bastion-source": f"{INVENTORY} {template}"}
        for method, operation in entry["methods"].items():
            parameters = [{"name": name, "in": "query", "required": True, "schema": {"type": "string"}} for name in entry.get("required_query") or ()]
            item[method.lower()] = {
                "summary": (operation.get("summary") or "")[:120],
                "parameters": parameters,
                "responses": {"2XX": {"description": "Success"}},
            }
        for suffix, (action, binding) in CSDL_ACTIONS.items():
            if template.endswith(suffix) and "post" in item and (schema := csdl_body(action, binding)):
                item["post"]["requestBody"] = {"required": True, "content": {"application/json": {"schema": schema}}}
        paths[spec_template] = item
    return paths


def main() -> None:
    from sandbox.spec_check import VENDORS

    samples = [s for s in sandbox_paths(VENDOR) if not s.endswith("/x1/x1") and not s.endswith("/root/x1")] + list(CALL_SAMPLES)
    result: dict[str, Any] = {
        "openapi": "3.0.1",
        "info": {"title": "Microsoft Graph v1.0 (cut for the Bastion sandbox)", "version": "v1.0"},
        "x-bastion-sources": [f"msgraph_v1.0_powershell_openApiDocs/{m}.yml" for m in MODULES] + [INVENTORY],
        "paths": {},
    }
    matched: set[str] = set()
    folder = SOURCE / "msgraph_v1.0_powershell_openApiDocs"
    for module in MODULES:
        matched |= cut_module(load(folder / f"{module}.yml"), samples, result)
    missing = [s for s in samples if s not in matched]
    extra = from_inventory(missing, VENDORS[VENDOR].rewrites)
    for template, item in extra.items():
        result["paths"].setdefault(template, item)
    still = [s for s in missing if not any(pattern(t).match(s) for t in extra)]
    result = strip(result)
    out = ROOT / "sandbox" / "specs" / f"{VENDOR}.json"
    out.write_text(json.dumps(result, separators=(",", ":"), sort_keys=True), encoding="utf-8")
    print(f"{VENDOR}: {len(result['paths'])} paths ({len(extra)} from the SDK inventory), {out.stat().st_size:,} bytes")
    for sample in still:
        print(f"  served but in no description: {sample}")


if __name__ == "__main__":
    main()
