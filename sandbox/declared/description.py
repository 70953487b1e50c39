"""A declared vendor's state description (sandbox/declared/<vendor>.yaml): loaded, checked, with clear errors."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

OPS = ("list", "create", "read", "update", "delete", "webhook_create", "events", "search", "attach", "batch", "detach")
FILTER_OPS = ("eq", "ref", "has_ref", "since", "open_or_since", "bool", "contains", "in", "item_pair", "encoded_query")
PAGING_STYLES = ("offset_token", "cursor", "page_number", "position", "link_header", "none")
SHAPES = ("flat", "jsonapi")
AUTH_STYLES = ("bearer", "basic")
ID_FORMATS = ("digits", "uuid", "hex")


class DescriptionInvalid(ValueError):
    """The state description cannot be served; the message names the field."""


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # in the spec's terms, {param} placeholders
    op: str
    collection: str = ""
    filters: dict[str, dict[str, str]] = field(default_factory=dict)
    bind: dict[str, dict[str, str]] = field(default_factory=dict)
    require_one_of: dict[str, Any] = field(default_factory=dict)
    assign: dict[str, str] = field(default_factory=dict)  # create: record field ← path parameter (an invitation's collection)
    status: int = 0  # the success status the spec documents, when not the engine's (201 for create, 200 otherwise)
    extra: dict[str, Any] = field(default_factory=dict)  # added beside the answer's envelope key (Brandfolder's meta)
    included: tuple[str, ...] = ()  # reference fields whose records are answered in a JSON:API `included` list
    answer: Any = None  # the list answer's whole shape ($rows, $next…: shapes.shape), instead of the description's paging.answer
    paged: bool = True  # false: a list answered whole (Intercom's /tags)
    upsert_on: str = ""  # create: a record with this field equal (any case) is answered instead (Intercom's POST /tags)
    attach: dict[str, Any] = field(default_factory=dict)  # {collection, into, item}: add a reference to the bound record
    search: dict[str, Any] = field(default_factory=dict)  # {fields: {query field: record path}} for op search
    id_param: str = ""  # the path parameter naming the record (default: the last one; /accounts/{a}/envelopes/{e} → e)
    list_field: str = ""  # a list answered as {list_field: [...], ...paging} instead of the envelope (DocuSign's envelopes)

    @property
    def pattern(self) -> re.Pattern[str]:
        return re.compile("^" + re.sub(r"\\\{([^}]+)\\\}", r"(?P<\1>[^/]+)", re.escape(self.path)) + "$")


@dataclass(frozen=True)
class Collection:
    name: str
    resource_type: str
    compact: tuple[str, ...]
    refs: dict[str, Any] = field(default_factory=dict)  # field → collection, or [collection] for a list of references
    defaults: dict[str, Any] = field(default_factory=dict)
    stamps: dict[str, str] = field(default_factory=dict)  # created / modified → the field stamped with the time
    done: dict[str, str] = field(default_factory=dict)  # flag → at: the time field set when the flag turns true
    permalink: str = ""
    inherit: dict[str, dict[str, str]] = field(default_factory=dict)
    create_requires_one_of: tuple[str, ...] = ()
    lookup: tuple[str, ...] = ()  # other fields a reference may name a record by (Asana: a user by e-mail)
    nested_refs: dict[str, Any] = field(default_factory=dict)  # list field → {item_field, collection, wrap} or {fields: {key: collection}}
    author: str = ""  # a field set on create to the acting user's reference (a comment's created_by)
    collect: dict[str, dict[str, str]] = field(default_factory=dict)  # list field ← references under `key` of `from`'s items
    computed: dict[str, Any] = field(default_factory=dict)  # fields set at creation from the record ({id} templates)
    merge: tuple[str, ...] = ()  # object fields an update merges into instead of replacing
    seed: tuple[dict[str, Any], ...] = ()
    envelope: dict[str, str] = field(default_factory=dict)  # one / many / request keys when they differ per collection (Aha!)
    shape: str = "flat"  # jsonapi: answered as {id, type, attributes, relationships} and read from data.attributes
    hidden: tuple[str, ...] = ()  # kept in the record but never answered (the id of a chart answered as its results)
    id_field: str = ""  # this collection's id field when it is not the vendor-wide ids.field (envelopeId, templateId)
    times: tuple[str, ...] = ()  # other fields whose seeded relative times (now-3h) become ISO 8601 when built
    numbering: dict[str, Any] = field(default_factory=dict)  # {field, format: "INC{n:07d}", start}: a human number per record
    # {fields: [work_notes], into: <collection>}: writing one of these fields appends an entry to `into` (element_id,
    # element, name, value) and the field itself reads back empty, as ServiceNow's journal fields do.
    journal: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Description:
    vendor: str
    spec_file: str
    spec_source: str
    base_path: str
    auth: dict[str, Any]
    envelope: dict[str, str]
    errors: dict[str, Any]
    ids: dict[str, Any]
    paging: dict[str, Any]
    fields_param: str
    collections: dict[str, Collection]
    routes: tuple[Route, ...]
    webhooks: dict[str, Any]
    events: dict[str, Any]
    spec_sources: tuple[str, ...] = ()  # a document published as several files (Productboard v2), merged by the cut
    batch: dict[str, Any] = field(default_factory=dict)  # the batch route's field names and limit (Asana's POST /batch)
    errata: tuple[dict[str, Any], ...] = ()  # corrections to the published document, each with its reason
    behaviour: str = ""  # a module with the vendor's own rules the description cannot state (before_create, after_change…)
    field_aliases: dict[str, str] = field(default_factory=dict)  # fields-parameter names → record fields (custom_fields)
    # Table-style vendors (ServiceNow): every value a string, times in `time_format`, references stored as ids and answered
    # as `references.style` says, `fields.mode: exact` (the fields parameter names exactly what is answered), outbound
    # deliveries a customer's script would make on record changes.
    values: str = "as_given"
    time_format: str = ""
    references: dict[str, Any] = field(default_factory=dict)
    fields_mode: str = "add"
    outbound: dict[str, Any] = field(default_factory=dict)

    def route_for(self, method: str, path: str) -> tuple[Route | None, dict[str, str], bool]:
        """(route, path parameters, whether the path exists for another method); literal paths win over templates."""
        exists = False
        for route in sorted(self.routes, key=lambda r: r.path.count("{")):
            match = route.pattern.match(path)
            if match:
                exists = True
                if route.method == method:
                    return route, match.groupdict(), True
        return None, {}, exists


def _need(doc: dict[str, Any], key: str, where: str) -> Any:
    if key not in doc:
        raise DescriptionInvalid(f"{where}.{key} is required")
    return doc[key]


def parse(doc: dict[str, Any], where: str = "description") -> Description:
    """Check and build a Description from its YAML document."""
    if not isinstance(doc, dict):
        raise DescriptionInvalid(f"{where} must be a mapping")
    vendor = str(_need(doc, "vendor", where))
    if not re.fullmatch(r"[a-z][a-z0-9_]*", vendor):
        raise DescriptionInvalid(f"{where}.vendor must be a lower-case key, not {vendor!r}")
    spec = _need(doc, "spec", where)
    collections: dict[str, Collection] = {}
    for name, body in (_need(doc, "collections", where) or {}).items():
        at = f"{where}.collections.{name}"
        body = dict(body or {})
        collections[name] = Collection(
            name=name,
            resource_type=str(_need(body, "resource_type", at)),
            compact=tuple(body.get("compact") or ("gid", "resource_type", "name")),
            refs=dict(body.get("refs") or {}),
            defaults=dict(body.get("defaults") or {}),
            stamps=dict(body.get("stamps") or {}),
            done=dict(body.get("done") or {}),
            permalink=str(body.get("permalink") or ""),
            inherit=dict(body.get("inherit") or {}),
            create_requires_one_of=tuple(body.get("create_requires_one_of") or ()),
            lookup=tuple(body.get("lookup") or ()),
            nested_refs=dict(body.get("nested_refs") or {}),
            author=str(body.get("author") or ""),
            collect=dict(body.get("collect") or {}),
            computed=dict(body.get("computed") or {}),
            merge=tuple(body.get("merge") or ()),
            seed=tuple(body.get("seed") or ()),
            envelope=dict(body.get("envelope") or {}),
            shape=str(body.get("shape") or "flat"),
            hidden=tuple(body.get("hidden") or ()),
            id_field=str(body.get("id_field") or ""),
            times=tuple(body.get("times") or ()),
            numbering=dict(body.get("numbering") or {}),
            journal=dict(body.get("journal") or {}),
        )
        if collections[name].shape not in SHAPES:
            raise DescriptionInvalid(f"{at}.shape must be one of {', '.join(SHAPES)}")
    for name, collection in collections.items():
        for ref_field, target in collection.refs.items():
            target_name = target[0] if isinstance(target, list) else target
            if target_name not in collections:
                raise DescriptionInvalid(f"{where}.collections.{name}.refs.{ref_field} names unknown collection {target_name!r}")
    routes = []
    for index, body in enumerate(_need(doc, "routes", where) or ()):
        at = f"{where}.routes[{index}]"
        route = Route(
            method=str(_need(body, "method", at)).upper(),
            path=str(_need(body, "path", at)),
            op=str(_need(body, "op", at)),
            collection=str(body.get("collection") or ""),
            filters=dict(body.get("filters") or {}),
            bind=dict(body.get("bind") or {}),
            require_one_of=dict(body.get("require_one_of") or {}),
            assign=dict(body.get("assign") or {}),
            status=int(body.get("status") or 0),
            extra=dict(body.get("extra") or {}),
            included=tuple(body.get("included") or ()),
            answer=body.get("answer"),
            paged=bool(body.get("paged", True)),
            upsert_on=str(body.get("upsert_on") or ""),
            attach=dict(body.get("attach") or {}),
            search=dict(body.get("search") or {}),
            id_param=str(body.get("id_param") or ""),
            list_field=str(body.get("list_field") or ""),
        )
        if route.attach and route.attach.get("collection") not in collections:
            raise DescriptionInvalid(f"{at}.attach.collection names unknown collection {route.attach.get('collection')!r}")
        if route.op not in OPS:
            raise DescriptionInvalid(f"{at}.op must be one of {', '.join(OPS)}, not {route.op!r}")
        if route.op not in ("events", "batch") and route.collection not in collections:
            raise DescriptionInvalid(f"{at}.collection names unknown collection {route.collection!r}")
        for param, rule in {**route.filters, **route.bind}.items():
            if rule.get("op", "eq") not in FILTER_OPS:
                raise DescriptionInvalid(f"{at}: filter {param!r} op must be one of {', '.join(FILTER_OPS)}")
        routes.append(route)
    paging = dict(doc.get("paging") or {"style": "none"})
    if paging.get("style") not in PAGING_STYLES:
        raise DescriptionInvalid(f"{where}.paging.style must be one of {', '.join(PAGING_STYLES)}")
    ids = dict(doc.get("ids") or {"format": "digits"})
    if ids.get("format") not in ID_FORMATS:
        raise DescriptionInvalid(f"{where}.ids.format must be one of {', '.join(ID_FORMATS)}")
    auth = dict(doc.get("auth") or {})
    if auth.get("style", "bearer") not in AUTH_STYLES:
        raise DescriptionInvalid(f"{where}.auth.style must be one of {', '.join(AUTH_STYLES)}")
    if doc.get("values", "as_given") not in ("as_given", "strings"):
        raise DescriptionInvalid(f"{where}.values must be as_given or strings")
    references = dict(doc.get("references") or {})
    if references.get("style", "compact") not in ("compact", "link_value"):
        raise DescriptionInvalid(f"{where}.references.style must be compact or link_value")
    return Description(
        vendor=vendor,
        spec_file=str(_need(spec, "file", f"{where}.spec")),
        spec_source=str(spec.get("source") or "") if not isinstance(spec.get("source"), list) else str(spec["source"][0]),
        base_path="/" + str(spec.get("base_path") or "").strip("/") if spec.get("base_path") else "",
        auth=auth,
        envelope=dict(doc.get("envelope") or {}),
        errors=dict(_need(doc, "errors", where)),
        ids=ids,
        paging=paging,
        fields_param=str((doc.get("fields") or {}).get("param") or ""),
        collections=collections,
        routes=tuple(routes),
        webhooks=dict(doc.get("webhooks") or {}),
        events=dict(doc.get("events") or {}),
        spec_sources=tuple(str(s) for s in spec["source"]) if isinstance(spec.get("source"), list) else (),
        batch=dict(doc.get("batch") or {}),
        errata=_errata(spec.get("errata"), f"{where}.spec.errata"),
        behaviour=str(doc.get("behaviour") or ""),
        field_aliases=dict((doc.get("fields") or {}).get("aliases") or {}),
        values=str(doc.get("values") or "as_given"),
        time_format=str(doc.get("time_format") or ""),
        references=references,
        fields_mode=str((doc.get("fields") or {}).get("mode") or "add"),
        outbound=dict(doc.get("outbound") or {}),
    )


def _errata(items: Any, where: str) -> tuple[dict[str, Any], ...]:
    """Each correction replaces the node at a JSON pointer and says why (a published document can contradict itself)."""
    out = []
    for index, item in enumerate(items or ()):
        if not isinstance(item, dict) or not str(item.get("pointer", "")).startswith("/") or "value" not in item or not item.get("why"):
            raise DescriptionInvalid(f"{where}[{index}] needs a pointer (/...), a value and a why")
        out.append(dict(item))
    return tuple(out)


def load(path: Path) -> Description:
    return parse(yaml.safe_load(path.read_text(encoding="utf-8")), where=path.name)
