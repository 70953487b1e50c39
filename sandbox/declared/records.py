"""Records of a declared vendor in the sandbox store: ids, references, stamps, field selection and list filters."""

from __future__ import annotations

import copy
import re
import uuid
from collections import OrderedDict
from datetime import UTC, datetime, timedelta
from typing import Any

from sandbox.declared.description import Collection, Description
from sandbox.state import STORE


class RecordError(Exception):
    """A request the vendor would refuse: status and message, rendered in the vendor's error envelope."""

    def __init__(self, status: int, message: str, code: str = ""):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code  # the vendor's error code when its envelope has one (DocuSign's errorCode)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(value: Any) -> datetime | None:
    """ISO 8601 (Z or offset), or the description's relative form now / now-3d / now-5h / now-10m."""
    if value in (None, ""):
        return None
    text = str(value)
    relative = re.fullmatch(r"now(?:-(\d+)([dhm]))?", text)
    if relative:
        amount, unit = relative.groups()
        delta = timedelta(**{{"d": "days", "h": "hours", "m": "minutes"}[unit]: int(amount)}) if amount else timedelta()
        return datetime.now(UTC) - delta
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class Records:
    """One declared vendor's collections in STORE (reset with the sandbox)."""

    def __init__(self, description: Description):
        self.d = description

    def table(self, name: str) -> OrderedDict[str, Any]:
        return STORE.collection(self.d.vendor, name)

    def new_id(self) -> str:
        style = self.d.ids.get("format")
        if style == "uuid":
            return str(uuid.uuid4())
        if style == "hex":
            return uuid.uuid4().hex[: int(self.d.ids.get("length", 24))]
        return str(int(self.d.ids.get("start", 1000000)) + STORE.next_id())

    def id_field(self, collection: Collection | None = None) -> str:
        """The id field: the collection's own (DocuSign's envelopeId) or the vendor-wide one (Asana's gid)."""
        if collection is not None and collection.id_field:
            return collection.id_field
        return str(self.d.ids.get("field", "gid"))

    def type_field(self) -> str:
        """Where a record keeps its collection's resource_type ("" = nowhere: Aha! records carry no type)."""
        return str(self.d.ids.get("type_field", "resource_type") or "")

    def render(self, collection: Collection, record: dict[str, Any]) -> dict[str, Any]:
        """A selected record as answered: hidden fields dropped; JSON:API collections as {id, type, attributes, relationships}."""
        shown = {k: v for k, v in record.items() if k not in collection.hidden}
        if collection.shape != "jsonapi":
            return shown
        id_field, type_field = self.id_field(collection), self.type_field()
        answer: dict[str, Any] = {"id": shown.get(id_field), "type": record.get(type_field) or collection.resource_type}
        answer["attributes"] = {k: v for k, v in shown.items() if k not in (id_field, type_field) and k not in collection.refs}
        relationships = {k: self._identifiers(shown[k]) for k in collection.refs if shown.get(k) is not None}
        if relationships:
            answer["relationships"] = relationships
        return answer

    def find_any(self, gid: str) -> tuple[Collection, dict[str, Any]] | None:
        """A record of any collection by id (webhook resources, event resources)."""
        for collection in self.d.collections.values():
            record = self.table(collection.name).get(gid)
            if record is not None:
                return collection, record
        return None

    def compact_ref(self, collection: Collection, record: dict[str, Any]) -> dict[str, Any]:
        return {key: record.get(key) for key in collection.compact if key in record}

    def resolve_refs(self, collection: Collection, data: dict[str, Any], *, me: str | None) -> dict[str, Any]:
        """Input ids of referenced records ("me" = the token's user) as the compact references the vendor answers with."""
        resolved = dict(data)
        for ref_field, target in collection.refs.items():
            if ref_field not in data or data[ref_field] is None:
                continue
            many = isinstance(target, list)
            target_collection = self.d.collections[target[0] if many else target]
            values = data[ref_field] if many else [data[ref_field]]
            if many and not isinstance(values, list):
                raise RecordError(400, f"{ref_field}: Value is not an array: {values}")
            refs = []
            for value in values:
                if isinstance(value, dict) and value.get(self.id_field(target_collection)) is None:
                    # A reference by another field ({"name": "Shipped"}: Aha!'s workflow status by name).
                    named = [value[n] for n in target_collection.lookup if value.get(n) is not None]
                    value = str(named[0]) if named else None
                gid = value.get(self.id_field(target_collection)) if isinstance(value, dict) else value
                gid = me if gid == "me" and me else str(gid)
                if gid == "" and self.d.references.get("style") == "link_value":
                    refs.append("")  # an empty reference clears the field
                    continue
                record = self.table(target_collection.name).get(gid) or self._lookup(target_collection, gid)
                if record is None:
                    raise RecordError(400, f"{ref_field}: Not a recognized ID: {gid}")
                if self.d.references.get("style") == "link_value":
                    refs.append(str(record[self.id_field()]))  # stored as the id; answered as {link, value} or the bare id
                    continue
                refs.append(self.compact_ref(target_collection, record))
            resolved[ref_field] = refs if many else refs[0]
        for list_field, rule in collection.nested_refs.items():
            if list_field in data or not rule.get("fields"):  # Asana: an update without memberships keeps them
                resolved[list_field] = self._nested_refs(list_field, rule, data.get(list_field))
        return resolved

    def _identifiers(self, ref: Any) -> Any:
        """A JSON:API relationship: the referenced records' {id, type} only."""
        if isinstance(ref, list):
            return [self._identifiers(r) for r in ref]
        return {"id": ref.get(self.id_field()), "type": ref.get(self.type_field())} if isinstance(ref, dict) else ref

    def lookup(self, collection: Collection, value: str) -> dict[str, Any] | None:
        """A record by its id or by one of its lookup fields (an Aha! feature by reference number)."""
        return self.table(collection.name).get(value) or self._lookup(collection, value)

    def _nested_refs(self, list_field: str, rule: dict[str, Any], items: Any) -> Any:
        """A list of objects each naming a record by id in `item_field` (Productboard's relationships: [{type, target: {id}}]):
        each reference becomes the record's compact form, and the list is kept in `wrap` ($items) when given."""
        from sandbox.declared.shapes import shape

        if items is None:
            items = []
        if not isinstance(items, list):
            raise RecordError(400, f"{list_field}: Value is not an array")
        # Several references per item ({fields: {project: projects, section: sections}}: Asana's memberships), or one.
        fields = dict(rule.get("fields") or {rule["item_field"]: rule["collection"]})
        resolved = []
        for item in items:
            if not isinstance(item, dict):
                raise RecordError(400, f"{list_field}: Value is not an object: {item}")
            out = dict(item)
            for item_field, collection_name in fields.items():
                ref = item.get(item_field)
                if ref is None and rule.get("fields"):
                    continue  # an optional key of a several-reference item
                gid = str(ref.get(self.id_field()) if isinstance(ref, dict) else ref or "")
                record = self.table(collection_name).get(gid)
                if record is None:
                    raise RecordError(int(rule.get("missing_status", 404)), f"{list_field}.{item_field}: Not a recognized ID: {gid}")
                out[item_field] = self.compact_ref(self.d.collections[collection_name], record)
            resolved.append(out)
        return shape(rule["wrap"], {"items": resolved}) if rule.get("wrap") else resolved

    def _lookup(self, collection: Collection, value: str) -> dict[str, Any] | None:
        for record in self.table(collection.name).values():
            if any(str(record.get(name, "")).lower() == value.lower() for name in collection.lookup):
                return record
        return None

    def build(self, collection: Collection, data: dict[str, Any], *, me: str | None, gid: str | None = None) -> dict[str, Any]:
        """A new record: defaults, input with references resolved, inherited fields, stamps, id and permalink."""
        now = self.stamp(datetime.now(UTC))
        data, notes = self.journal_split(collection, data)
        record: dict[str, Any] = {self.id_field(collection): gid or self.new_id()}
        type_field = self.type_field()
        if type_field:
            record[type_field] = collection.resource_type
        record.update({k: (copy.deepcopy(v) if isinstance(v, list | dict) else v) for k, v in collection.defaults.items()})
        # Asana's resource_type is the collection's; a `type` given in input or a seed names a subtype (Productboard's
        # /entities hold features, releases and components).
        kept = (self.id_field(collection), "resource_type") if type_field == "resource_type" else (self.id_field(collection),)
        record.update(self.resolve_refs(collection, {k: v for k, v in data.items() if k not in kept}, me=me))
        if collection.author and me and record.get(collection.author) is None:
            found = self.find_any(me)
            record[collection.author] = self.compact_ref(found[0], found[1]) if found else {self.id_field(): me}
        for target_field, rule in collection.collect.items():
            gathered = list(record.get(target_field) or [])
            for item in record.get(rule["from"]) or []:
                ref = item.get(rule["key"]) if isinstance(item, dict) else None
                if isinstance(ref, dict) and all(r.get(self.id_field()) != ref.get(self.id_field()) for r in gathered):
                    gathered.append(ref)
            record[target_field] = gathered
        for target_field, rule in collection.inherit.items():
            if record.get(target_field) is None:
                source = record.get(rule["from"])
                source = source[0] if isinstance(source, list) and source else source
                if isinstance(source, dict):
                    found = self.find_any(str(source.get(self.id_field(self.d.collections[_target(collection.refs[rule["from"]])]))))
                    if found and found[1].get(rule["field"]) is not None:
                        record[target_field] = found[1][rule["field"]]
        for stamp in ("created", "modified"):
            name = collection.stamps.get(stamp)
            if name:
                given = record.get(name)
                moment = datetime.fromtimestamp(given, UTC) if isinstance(given, int) else parse_time(given)
                if collection.stamps.get("format") == "epoch":  # Intercom's times are Unix seconds
                    record[name] = int((moment or datetime.now(UTC)).timestamp())
                else:
                    record[name] = self.stamp(moment) if moment else now
        for name in collection.times:
            moment = parse_time(record.get(name))
            if moment is not None:
                record[name] = iso(moment)
        numbering = collection.numbering
        if numbering and not record.get(numbering["field"]):
            with STORE.lock:
                counters = STORE.collection(self.d.vendor, "_numbers")
                counters[collection.name] = counters.get(collection.name, int(numbering.get("start", 1)) - 1) + 1
                record[numbering["field"]] = str(numbering["format"]).format(n=counters[collection.name])
        self._done(collection, record, previous=False)
        if collection.computed:
            from sandbox.declared.shapes import shape

            record.update(shape(collection.computed, {k: v for k, v in record.items() if isinstance(v, str)}))
        if collection.permalink:
            record["permalink_url"] = collection.permalink.format(**{k: v for k, v in record.items() if isinstance(v, str)})
        self.journal_write(collection, record, notes, me=me)
        return self._stringified(record)

    def journal_split(self, collection: Collection, data: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        """The input without its journal fields, and the (field, text) entries to append."""
        fields = set(collection.journal.get("fields") or ())
        entries = [(name, str(value)) for name, value in data.items() if name in fields and value not in (None, "")]
        return {k: v for k, v in data.items() if k not in fields}, entries

    def journal_write(self, collection: Collection, record: dict[str, Any], entries: list[tuple[str, str]], *, me: str | None) -> None:
        into = self.d.collections[collection.journal["into"]] if entries else None
        for name, value in entries:
            row = {"element_id": record[self.id_field()], "element": name, "name": collection.resource_type, "value": value, "sys_created_by": me or ""}
            entry = self.build(into, row, me=me)
            self.table(into.name)[entry[self.id_field()]] = entry

    def stamp(self, moment: datetime) -> str:
        """A time as the vendor writes it: the description's `time_format` (in UTC) or ISO 8601 with milliseconds."""
        return moment.astimezone(UTC).strftime(self.d.time_format) if self.d.time_format else iso(moment)

    def _stringified(self, record: dict[str, Any]) -> dict[str, Any]:
        """With `values: strings` every scalar is kept as the vendor answers it: text, "" for empty, "true"/"false"."""
        if self.d.values != "strings":
            return record
        for key, value in record.items():
            if value is None:
                record[key] = ""
            elif isinstance(value, bool):
                record[key] = "true" if value else "false"
            elif isinstance(value, int | float):
                record[key] = str(value)
        return record

    def apply_update(self, collection: Collection, record: dict[str, Any], data: dict[str, Any], *, me: str | None) -> list[str]:
        """Change a record in place; returns the fields that changed."""
        previous = bool(record.get(collection.done.get("flag", ""))) if collection.done else False
        data, notes = self.journal_split(collection, data)
        self.journal_write(collection, record, notes, me=me)
        changed = [name for name, _ in notes]  # a journal entry is a change (the record's time moves)
        for key, value in self.resolve_refs(collection, data, me=me).items():
            if key in (self.id_field(collection), self.type_field()):
                continue
            if key in collection.merge and isinstance(value, dict) and isinstance(record.get(key), dict):
                value = {**record[key], **value}  # Productboard's PATCH {fields: {name}} keeps the other fields
            if record.get(key) != value:
                record[key] = value
                changed.append(key)
        if changed and collection.stamps.get("modified"):
            now = datetime.now(UTC)
            record[collection.stamps["modified"]] = int(now.timestamp()) if collection.stamps.get("format") == "epoch" else self.stamp(now)
        self._done(collection, record, previous=previous)
        self._stringified(record)
        return changed

    def _done(self, collection: Collection, record: dict[str, Any], *, previous: bool) -> None:
        flag, at = collection.done.get("flag"), collection.done.get("at")
        if not flag or not at:
            return
        if record.get(flag) and not previous and not record.get(at):
            record[at] = iso(datetime.now(UTC))
        elif not record.get(flag):
            record[at] = None

    def present(self, collection: Collection, record: dict[str, Any], fields_param: str | None, *, link_base: str, bare_refs: bool) -> dict[str, Any]:
        """A table-style record as answered: the whole record or exactly the named fields (`a.b` walks a reference),
        references as {link, value} (or the bare id when the request excludes reference links)."""
        names = [n.strip() for n in (fields_param or "").split(",") if n.strip()] or list(record)
        shown: dict[str, Any] = {}
        for name in names:
            head, _, rest = name.partition(".")
            if head not in record:
                continue
            target = collection.refs.get(head)
            target = target if isinstance(target, str) else None  # table-style references are single
            value = record[head]
            if rest and target and value:
                walked = self.table(target).get(str(value)) or {}
                shown[name] = walked.get(rest, "")
            elif rest:
                shown[name] = ""
            elif target and value and not bare_refs:
                shown[name] = {"link": f"{link_base}/{self.d.collections[target].resource_type}/{value}", "value": value}
            else:
                shown[name] = value
        return shown

    def select(self, collection: Collection, record: dict[str, Any], fields_param: str | None, *, full: bool) -> dict[str, Any]:
        """The record as answered: compact by default in lists, plus the fields named in opt_fields-style parameters."""
        if full and not fields_param:
            return dict(record)
        wanted = list(collection.compact)
        for name in (fields_param or "").split(","):
            head = name.strip().split(".", 1)[0]
            head = self.d.field_aliases.get(head, head)
            if head and head not in wanted:
                wanted.append(head)
        shown = {key: record[key] for key in wanted if key in record}
        shown.setdefault(self.id_field(collection), record.get(self.id_field(collection)))
        return shown

    def seed(self, collection: Collection) -> None:
        """Insert the collection's seed records (`generate: N` with `template` repeats one, {n} numbered from 1)."""
        rows: list[dict[str, Any]] = []
        for entry in collection.seed:
            if "generate" in entry:
                for n in range(1, int(entry["generate"]) + 1):
                    rows.append({k: _fill(v, n) for k, v in entry["template"].items()})
            else:
                rows.append(dict(entry))
        key = self.id_field(collection)
        for row in rows:
            record = self.build(collection, row, me=None, gid=str(row.get(key)) if row.get(key) else None)
            self.table(collection.name)[record[key]] = record


def _target(ref: Any) -> str:
    return ref[0] if isinstance(ref, list) else ref


def _fill(value: Any, n: int) -> Any:
    """A seed template's value for record n: {n} formatted; `{cycle: [a, b, c]}` takes the n-th choice in turn."""
    if isinstance(value, str):
        return value.format(n=n)
    if isinstance(value, list):
        return [_fill(v, n) for v in value]
    if isinstance(value, dict) and isinstance(value.get("cycle"), list) and value["cycle"]:
        return _fill(value["cycle"][(n - 1) % len(value["cycle"])], n)
    if isinstance(value, dict):
        return {k: _fill(v, n) for k, v in value.items()}
    return value


def matches(record: dict[str, Any], rule: dict[str, str], value: str, id_field: str) -> bool:
    """Whether a record passes one list filter (a query parameter or a bound path parameter)."""
    from sandbox.declared.shapes import get_path

    op, current = rule.get("op", "eq"), get_path(record, rule["field"]) if "." in rule["field"] else record.get(rule["field"])
    if op == "eq":
        return str(current) == value
    if op == "in":  # a comma-separated list of accepted values (DocuSign's status=sent,delivered)
        return str(current).lower() in {v.strip().lower() for v in value.split(",") if v.strip()}
    if op == "item_pair":  # name=value among a list of {name, value} objects (DocuSign's custom_field=Region=West)
        name, _, wanted = value.partition("=")
        keys = rule.get("keys") or ["name", "value"]
        items = current if isinstance(current, list) else [current]  # a dotted path answers a lone item unwrapped
        return any(isinstance(i, dict) and i.get(keys[0]) == name and str(i.get(keys[1])) == wanted for i in items)
    if op == "bool":
        return bool(current) == (value.lower() == "true")
    if op == "ref":
        if isinstance(current, str):  # a reference stored as its id (references.style link_value)
            return current == value
        return isinstance(current, dict) and str(current.get(id_field)) == value
    if op == "has_ref":
        current = [current] if isinstance(current, dict) else current  # a dotted path through one item is that item
        return isinstance(current, list) and any(isinstance(r, dict) and str(r.get(id_field)) == value for r in current)
    if op == "contains":  # a name search: case-insensitive substring
        return value.casefold() in str(current or "").casefold()
    moment = datetime.now(UTC) if value == "now" else parse_time(value)
    if moment is None:
        raise RecordError(400, f"{rule['field']}: Not a valid date-time: {value}")
    stamp = parse_time(current)
    if op == "since":
        return stamp is not None and stamp >= moment
    return current is None or (stamp is not None and stamp >= moment)  # open_or_since: not done, or done since
