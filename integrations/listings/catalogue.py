"""The declared listings (one YAML file per vendor in vendors/): loaded once, checked, and read by the marketplace and the API."""

from __future__ import annotations

import csv
import io
import string
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from django.core.exceptions import ImproperlyConfigured

VENDORS_DIR = Path(__file__).resolve().parent / "vendors"
STARTERS_DIR = Path(__file__).resolve().parent / "starters"
CATEGORY_LABELS = {
    "deal_rooms": "Data rooms & M&A",
    "equity": "Equity & cap table",
    "competitive_intel": "Competitive intelligence",
    "people_data": "People data",
}
AVAILABILITY_LABELS = {
    "no_public_api": "No public API",
    "partner_only": "API for partners and own-data customers",
    "customer_api": "Customer API, no public description",
    "restricted": "API restricted by the vendor",
}
TEMPLATE_KINDS = {"people", "lines"}
PEOPLE_COLUMNS = {"name", "given_name", "family_name", "email", "role"}
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")  # a template's sample cell must not be a spreadsheet formula


@dataclass(frozen=True)
class Source:
    url: str
    says: str
    confirmed: bool


@dataclass(frozen=True)
class ImportTemplate:
    """One vendor export mapped to one scenario field: the column names it may carry and how a row reads."""

    key: str
    title: str
    description: str
    exported_from: str
    confirmed: bool  # the column names come from the vendor's documentation (else Bastion's own template)
    scenario_type: str
    field: str
    kind: str  # people | lines
    columns: dict[str, tuple[str, ...]]
    required: tuple[str, ...]
    skip_values: dict[str, tuple[str, ...]]
    line: str
    details: tuple[str, ...]
    repeated_rows: bool
    template_columns: tuple[str, ...]
    sample: tuple[dict[str, str], ...]

    def mapping_spec(self) -> dict[str, Any]:
        """The generic column mapping an import reads (scenarios.field_imports.ColumnMapping takes these keywords)."""
        return {
            "label": self.title,
            "columns": self.columns,
            "required": self.required,
            "skip_values": self.skip_values,
            "line": self.line,
            "details": self.details,
            "repeated_rows": self.repeated_rows,
        }

    def csv_text(self) -> str:
        """The blank template to download: a header in the vendor's column names and the sample rows."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow([self.columns[name][0] for name in self.template_columns])
        for row in self.sample:
            writer.writerow([row.get(name, "") for name in self.template_columns])
        return buffer.getvalue()


@dataclass(frozen=True)
class Listing:
    """A marketplace card for a system Bastion does not connect to: its import path, its limits and the vendor's API status."""

    key: str
    name: str
    category: str
    vendor_url: str
    summary: str
    availability: str
    api_status: str
    facts: str
    can: tuple[str, ...]
    cannot: tuple[str, ...]
    why: str
    starter: str  # file in starters/ for the custom connector builder, or ""
    inbound_webhook: bool
    reach_note: str
    templates: tuple[ImportTemplate, ...]
    sources: tuple[Source, ...]

    @property
    def category_label(self) -> str:
        return CATEGORY_LABELS[self.category]

    @property
    def availability_label(self) -> str:
        return AVAILABILITY_LABELS[self.availability]

    @property
    def logo(self) -> str:
        return f"connectors/{self.key}.svg"

    def template(self, key: str) -> ImportTemplate | None:
        return next((t for t in self.templates if t.key == key), None)

    def starter_text(self) -> str:
        return (STARTERS_DIR / self.starter).read_text(encoding="utf-8") if self.starter else ""


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ImproperlyConfigured(f"{where} must be a list of non-empty strings.")
    return tuple(value)


def _template(doc: dict[str, Any], where: str) -> ImportTemplate:
    kind = doc.get("kind")
    if kind not in TEMPLATE_KINDS:
        raise ImproperlyConfigured(f"{where}.kind must be one of {sorted(TEMPLATE_KINDS)}.")
    columns = {str(name): _strings(names, f"{where}.columns.{name}") for name, names in (doc.get("columns") or {}).items()}
    required = _strings(doc.get("required") or [], f"{where}.required") if doc.get("required") else ()
    details = _strings(doc.get("details") or [], f"{where}.details") if doc.get("details") else ()
    template_columns = _strings(doc["template_columns"], f"{where}.template_columns") if doc.get("template_columns") else tuple(columns)
    skip_values = {str(name): _strings(values, f"{where}.skip_values.{name}") for name, values in (doc.get("skip_values") or {}).items()}
    line = str(doc.get("line") or "")
    named = {part[1] for part in string.Formatter().parse(line) if part[1] is not None}
    unknown = (set(required) | set(details) | set(template_columns) | set(skip_values) | named) - set(columns)
    if unknown:
        raise ImproperlyConfigured(f"{where} names columns it does not declare: {sorted(unknown)}.")
    if kind == "lines" and (not line or not named <= set(required)):
        raise ImproperlyConfigured(f"{where}.line must use required columns only (an empty one would leave a hole in the line).")
    if kind == "people" and not ({"email"} <= set(columns) and ({"name", "given_name"} & set(columns))):
        raise ImproperlyConfigured(f"{where}: a people template reads an email and a name (or given name).")
    sample = tuple({str(k): str(v) for k, v in row.items()} for row in doc.get("sample") or [])
    if any(value.startswith(FORMULA_PREFIXES) for row in sample for value in row.values()):
        raise ImproperlyConfigured(f"{where}.sample holds a cell a spreadsheet would run as a formula.")
    return ImportTemplate(
        key=str(doc["key"]),
        title=str(doc["title"]),
        description=str(doc["description"]),
        exported_from=str(doc["exported_from"]),
        confirmed=bool(doc.get("confirmed")),
        scenario_type=str(doc["scenario_type"]),
        field=str(doc["field"]),
        kind=kind,
        columns=columns,
        required=required,
        skip_values=skip_values,
        line=line,
        details=details,
        repeated_rows=bool(doc.get("repeated_rows")),
        template_columns=template_columns,
        sample=sample,
    )


def _listing(path: Path) -> Listing:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    where = path.name
    try:
        if doc["category"] not in CATEGORY_LABELS or doc["availability"] not in AVAILABILITY_LABELS:
            raise ImproperlyConfigured(f"{where}: unknown category or availability.")
        reach = doc.get("reach") or {}
        starter = str(reach.get("custom_connector") or "")
        if starter and not (STARTERS_DIR / starter).is_file():
            raise ImproperlyConfigured(f"{where}: starter spec {starter} is not in {STARTERS_DIR}.")
        templates = tuple(_template(t, f"{where}.templates[{i}]") for i, t in enumerate(doc.get("templates") or []))
        if not templates:
            raise ImproperlyConfigured(f"{where}: a listing offers at least one import template.")
        return Listing(
            key=str(doc["key"]),
            name=str(doc["name"]),
            category=str(doc["category"]),
            vendor_url=str(doc["vendor_url"]),
            summary=str(doc["summary"]),
            availability=str(doc["availability"]),
            api_status=str(doc["api_status"]),
            facts=str(doc["facts"]),
            can=_strings(doc["can"], f"{where}.can"),
            cannot=_strings(doc["cannot"], f"{where}.cannot"),
            why=str(doc["why"]),
            starter=starter,
            inbound_webhook=bool(reach.get("inbound_webhook")),
            reach_note=str(reach.get("note") or ""),
            templates=templates,
            sources=tuple(Source(url=str(s["url"]), says=str(s["says"]), confirmed=bool(s.get("confirmed"))) for s in doc.get("sources") or []),
        )
    except KeyError as missing:
        raise ImproperlyConfigured(f"{where}: missing {missing}.") from missing


@lru_cache(maxsize=1)
def listings() -> tuple[Listing, ...]:
    """Every declared listing, by name."""
    loaded = [_listing(path) for path in sorted(VENDORS_DIR.glob("*.yaml"))]
    keys = [listing.key for listing in loaded]
    if len(set(keys)) != len(keys):
        raise ImproperlyConfigured(f"Two listings share a key: {keys}.")
    return tuple(sorted(loaded, key=lambda listing: listing.name.lower()))


def listing_get(key: str) -> Listing | None:
    return next((listing for listing in listings() if listing.key == key), None)
