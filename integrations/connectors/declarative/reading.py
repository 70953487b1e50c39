"""Reading entities from a spec: one page per call, paging styles, incremental cursors with lookback, deletions, fields."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urljoin

from integrations.connectors.base import FieldInfo, Page, TrackedObject
from integrations.connectors.declarative.filters import to_datetime
from integrations.connectors.declarative.runtime import DeclarativeConnector, response_scope, select, text
from integrations.connectors.declarative.template import holds, render


def format_time(moment: datetime, fmt: str) -> Any:
    """A cursor time in the vendor's format (the spec's incremental.format)."""
    moment = moment.astimezone(UTC)
    if fmt == "date":
        return moment.date().isoformat()
    if fmt == "iso_z":
        return moment.isoformat(timespec="seconds").replace("+00:00", "Z")
    if fmt == "iso_z_ms":
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if fmt == "epoch":
        return int(moment.timestamp())
    if fmt == "epoch_ms":
        return int(moment.timestamp() * 1000)
    return moment.isoformat()


def tracked_object(spec: Mapping[str, Any], scope: Mapping[str, Any]) -> TrackedObject:
    """The war room's view of an object from the spec's `tracked` templates."""
    details = render(spec.get("details"), scope) if "details" in spec else {}
    return TrackedObject(
        title=text(render(spec.get("title", ""), scope)),
        owner=text(render(spec.get("owner", ""), scope)),
        status=text(render(spec.get("status", "open"), scope)) or "open",
        is_done=holds(spec.get("done", False), scope),
        url=text(render(spec.get("url", ""), scope)),
        key=text(render(spec.get("key", ""), scope)),
        details=details if isinstance(details, dict) else {},
    )


class ReadingMixin(DeclarativeConnector):
    """read, discover_fields, external_id, updated_at, to_bastion, tracked_state from `entities`."""

    def _entity(self, entity: str) -> Mapping[str, Any]:
        spec = (self.spec.get("entities") or {}).get(entity)
        if spec is None:
            raise KeyError(f"{self.manifest.key} has no entity '{entity}'")
        return spec

    def read(self, entity: str, *, cursor: Any = None, page: Any = None) -> Page:
        hook = self.hook("read", entity)
        if hook is not None:
            return hook(self, entity, cursor=cursor, page=page)
        spec = self._entity(entity)
        read = spec.get("read") or {}
        paging = read.get("paging") or {"kind": "none"}
        kind = paging["kind"]
        position = dict(page or {})
        incremental = spec.get("incremental") or {}
        fmt = incremental.get("format", "iso")
        run_start = incremental.get("kind") == "datetime" and incremental.get("from", "run_start") == "run_start"
        started = position.get("started") or (format_time(datetime.now(UTC), fmt) if run_start else None)
        since: Any = None
        if cursor not in (None, ""):
            since = cursor
            moment = to_datetime(cursor) if incremental.get("kind") == "datetime" else None
            if moment is not None:
                since = format_time(moment - timedelta(seconds=float(incremental.get("lookback_seconds") or 0)), fmt)
        scope = self.scope(cursor=since, page=position, started=started, entity=entity)
        size = int(render(paging["size"], scope)) if "size" in paging else None
        first: dict[str, Any] = {}
        number = int(position.get("page", paging.get("start", 1)))
        offset = int(position.get("offset", paging.get("start", 0)))
        if kind in ("page_number", "offset"):
            if paging.get("size_first") and paging.get("size_param") and size is not None:
                first[paging["size_param"]] = size
            first[paging["param"]] = number if kind == "page_number" else offset
            if paging.get("size_param") and size is not None:
                first.setdefault(paging["size_param"], size)
        request = self.resolve(read["request"])
        if kind == "cursor" and position.get("cursor"):
            if paging.get("cursor_in") == "json":
                request = {**request, "json": {**(request.get("json") or {}), paging["param"]: position["cursor"]}}
            elif paging.get("cursor_in") == "template":
                pass  # the request's templates place `page.cursor` themselves (Intercom: json.pagination.starting_after)
            else:
                first[paging["param"]] = position["cursor"]
        elif kind == "cursor" and paging.get("size_param") and size is not None:
            first[paging["size_param"]] = size
        if kind in ("next_link", "link_header") and position.get("next"):
            link = str(position["next"])
            headers = {k: text(v) for k, v in render(request.get("headers") or {}, scope, drop_none=True).items()}
            extra: dict[str, Any] = {"headers": headers} if headers else {}
            if self._query_auth is not None and f"{self._query_auth[0]}=" not in link:
                extra["params"] = dict([self._query_auth])  # a key sent in the query goes with every page, next links too
            response = self.client.get(link if "://" in link else link.lstrip("/"), **extra)
        else:
            response = self.send(request, scope, params_first=first)
        answer = {**scope, **response_scope(response), "response": response}
        records = select(read.get("records"), answer["body"])
        answer["records"] = records
        next_page = self._next_position(kind, paging, answer, response, records, number, offset, size)
        deleted = self._deleted(spec, records)
        if deleted:
            gone = set(deleted)
            records = [r for r in records if self.external_id(entity, r) not in gone]
        cursor_out: Any = None
        if incremental.get("kind") == "datetime" and not run_start:
            latest = [to_datetime(render(incremental["field"], {**scope, "record": r})) for r in answer["records"]]
            known = [m for m in [to_datetime(position.get("max")), *latest] if m is not None]
            newest = format_time(max(known), fmt) if known else None
            if next_page is not None and newest is not None:
                next_page["max"] = newest
            cursor_out = newest if next_page is None else None
        elif next_page is None and run_start:
            cursor_out = started
        elif next_page is None and incremental.get("kind") == "token":
            cursor_out = render(incremental["token"], answer) or None
        if next_page is not None and started:
            next_page["started"] = started
        if next_page is None and (spec.get("deletions") or {}).get("kind") == "events" and since is not None:
            deleted += self._deleted_by_events(spec["deletions"], scope)
        return Page(records=records, next_page=next_page, cursor=cursor_out, is_full_scan=not cursor if incremental else True, deleted_ids=deleted)

    @staticmethod
    def _next_position(
        kind: str, paging: Mapping[str, Any], answer: Mapping[str, Any], response: Any, records: list, number: int, offset: int, size: int | None
    ):
        if kind == "none" or (paging.get("stop") and holds(paging["stop"], answer)):
            return None
        if kind in ("page_number", "offset"):
            more = holds(paging["has_more"], answer) if "has_more" in paging else size is not None and len(records) >= size
            if not (more and records):
                return None
            return {"page": number + 1} if kind == "page_number" else {"offset": offset + len(records)}
        if kind == "link_header":
            link = response.links.get("next", {}).get("url")
            return {"next": urljoin(response.url, link)} if link else None
        value = render(paging["next"], answer)
        if value in (None, ""):
            return None
        return {"cursor": value} if kind == "cursor" else {"next": str(value)}

    def _deleted(self, spec: Mapping[str, Any], records: list[Any]) -> list[str]:
        deletions = spec.get("deletions") or {}
        if deletions.get("kind") != "tombstone":
            return []
        scope = self.scope()
        return [self.external_id_of(spec, r) for r in records if holds(deletions.get("when"), {**scope, "record": r})]

    def _deleted_by_events(self, deletions: Mapping[str, Any], scope: dict[str, Any]) -> list[str]:
        answer = self.send_scoped(deletions["request"], scope)
        return [text(render(deletions.get("id", "{{ record.id }}"), {**answer, "record": r})) for r in select(deletions.get("records"), answer["body"])]

    def external_id_of(self, spec: Mapping[str, Any], record: Mapping[str, Any]) -> str:
        if "id" not in spec:
            return str(record["id"])
        return text(render(spec["id"], {"record": record, "config": self.config, "const": self.spec.get("constants") or {}}))

    def external_id(self, entity: str, record: Mapping[str, Any]) -> str:
        hook = self.hook("external_id", entity)
        return hook(self, entity, record) if hook is not None else self.external_id_of(self._entity(entity), record)

    def updated_at(self, entity: str, record: Mapping[str, Any]) -> str | None:
        hook = self.hook("updated_at", entity)
        if hook is not None:
            return hook(self, entity, record)
        template = self._entity(entity).get("updated_at")
        value = render(template, {"record": record, "config": self.config}) if template else None
        return None if value in (None, "") else str(value)

    def to_bastion(self, entity: str, record: Mapping[str, Any]) -> dict[str, Any]:
        hook = self.hook("to_bastion", entity)
        if hook is not None:
            return hook(self, entity, record)
        transform = self._entity(entity).get("transform")
        if not transform:
            return dict(record)
        return dict(render(transform, {"record": record, "config": self.config, "const": self.spec.get("constants") or {}}))

    def from_bastion(self, entity: str, data: Mapping[str, Any]) -> dict[str, Any]:
        hook = self.hook("from_bastion", entity)
        return hook(self, entity, data) if hook is not None else dict(data)

    @classmethod
    def tracked_state(cls, entity: str, record: Mapping[str, Any], *, config: Mapping[str, Any]) -> TrackedObject | None:
        hook = cls.hook("tracked_state", entity)
        if hook is not None:
            return hook(cls, entity, record, config=config)
        spec = ((cls.spec.get("entities") or {}).get(entity) or {}).get("tracked")
        return tracked_object(spec, {"record": record, "config": config, "const": cls.spec.get("constants") or {}}) if spec else None

    def discover_fields(self, entity: str) -> list[FieldInfo]:
        hook = self.hook("discover_fields", entity)
        if hook is not None:
            return hook(self, entity)
        fields = self._entity(entity).get("fields")
        if fields is None:
            raise NotImplementedError(f"{self.manifest.name} declares no fields for '{entity}'")
        if isinstance(fields, list):
            return [
                FieldInfo(
                    f["name"],
                    f.get("label") or f["name"],
                    f.get("type", "string"),
                    f.get("path", f"$.{f['name']}"),
                    bool(f.get("required")),
                    bool(f.get("custom")),
                )
                for f in fields
            ]
        if fields["discover"] == "endpoint":
            answer = self.send_scoped(fields["request"], self.scope(entity=entity))
            out = []
            for item in select(fields.get("records"), answer["body"]):
                item_scope = {**answer, "item": item}
                if fields.get("skip") and holds(fields["skip"], item_scope):
                    continue
                name = text(render(fields["name"], item_scope))
                out.append(
                    FieldInfo(
                        name,
                        text(render(fields.get("label", name), item_scope)) or name,
                        text(render(fields.get("type", "string"), item_scope)) or "string",
                        text(render(fields.get("path", f"$.{name}"), item_scope)),
                        holds(fields.get("required", False), item_scope),
                        holds(fields.get("custom", False), item_scope),
                    )
                )
            return out
        return self._sample_fields(entity, fields)

    def _sample_fields(self, entity: str, fields: Mapping[str, Any]) -> list[FieldInfo]:
        if "request" in fields:
            answer = self.send_scoped(fields["request"], self.scope(entity=entity))
            records = select(fields.get("records"), answer["body"])
        else:
            records = self.read(entity).records
        known = list(fields.get("known") or [])
        sample = records[0] if records and isinstance(records[0], Mapping) else ({} if known else {"id": ""})
        prefixes, suffixes = tuple(fields.get("datetime_prefixes") or ()), tuple(fields.get("datetime_suffixes") or ())
        required = set(fields.get("required") or ())
        out = []
        for name in dict.fromkeys([*known, *sample.keys()]):
            value = sample.get(name)
            kind = "array" if isinstance(value, list) else "object" if isinstance(value, dict) else "string"
            if kind == "string" and ((prefixes and name.startswith(prefixes)) or (suffixes and name.endswith(suffixes))):
                kind = "datetime"
            out.append(FieldInfo(name, name.replace("_", " ").capitalize(), kind, f"$.{name}", is_required=name in required))
        return out
