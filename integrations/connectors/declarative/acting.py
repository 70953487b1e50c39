"""Actions from a spec: checks, idempotency (vendor key header or search for the marker, create-once), results, undo."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

import requests

from integrations.connectors.base import ActionResult, DocumentItem, TrackedObject
from integrations.connectors.declarative.reading import ReadingMixin, tracked_object
from integrations.connectors.declarative.runtime import ERROR_CLASSES, CaseInsensitive, response_scope, select, text
from integrations.connectors.declarative.template import holds, render
from integrations.connectors.kit.once import create_once
from integrations.errors import ApiBadRequest, ApiError, ApiNotFound


def action_result(spec: Mapping[str, Any] | None, scope: Mapping[str, Any], record: Any, *, created: bool) -> ActionResult:
    """The ActionResult the spec's `result` describes, for the object `record` (created, or found again)."""
    spec = spec or {}
    scope = {**scope, "record": record}
    data = render(spec["data"], scope) if "data" in spec else (dict(record) if isinstance(record, Mapping) else {"value": record})
    return ActionResult(
        external_id=text(render(spec.get("external_id", "{{ record.id }}"), scope)),
        url=text(render(spec.get("url", ""), scope)),
        data=data if isinstance(data, dict) else {"value": data},
        created=created,
        tracked=tracked_object(spec["tracked"], scope) if spec.get("tracked") else None,
        link_text=text(render(spec.get("link_text", ""), scope)),
        summary=text(render(spec.get("summary", ""), scope)),
    )


def _answered(answer: Mapping[str, Any]) -> dict[str, Any]:
    """Only what a shared answer says (body, headers, status): each item keeps its own input, key, marker and vars."""
    return {name: answer[name] for name in ("body", "headers", "status", "response") if name in answer}


class ActingMixin(ReadingMixin):
    """perform (and the default perform_bulk) from `actions`."""

    def _action(self, action: str) -> Mapping[str, Any]:
        spec = (self.spec.get("actions") or {}).get(action)
        if spec is None:
            raise KeyError(f"{self.manifest.key} has no action '{action}'")
        return spec

    def action_scope(
        self, spec: Mapping[str, Any], payload: Mapping[str, Any], idempotency_key: str, *, memo: dict[str, Any] | None = None, **extra: Any
    ) -> dict[str, Any]:
        scope = self.scope(action_vars=spec.get("vars"), input=dict(payload), payload=dict(payload), key=idempotency_key, **extra)
        idempotency = spec.get("idempotency") or {}
        scope["marker"] = render(idempotency["marker"], scope) if idempotency.get("marker") else None
        checks = spec.get("checks") or []
        self._check((c for c in checks if not c.get("after_steps")), scope)
        # Requests before the action's own (look up a user's id by e-mail, read the parent): `steps.<name>.body` / `.records`.
        scope = self.run_steps(spec.get("steps"), scope, memo=memo)
        self._check((c for c in checks if c.get("after_steps")), scope)  # what a step found (a section named that)
        return scope

    @staticmethod
    def _check(checks: Any, scope: Mapping[str, Any]) -> None:
        for check in checks:
            if holds(check["fail_if"], scope):
                raise ApiBadRequest(text(render(check["message"], scope)))

    def perform(self, action: str, payload: Mapping[str, Any], *, idempotency_key: str, known_new: bool = False) -> ActionResult:
        hook = self.hook("perform", action)
        if hook is not None:
            return hook(self, action, payload, idempotency_key=idempotency_key, known_new=known_new)
        spec = self._action(action)
        scope = self.action_scope(spec, payload, idempotency_key, known_new=known_new, action=action)
        idempotency = spec.get("idempotency") or {"kind": "none"}
        result_spec = spec.get("result") or {}
        once = idempotency.get("create_once")
        extra_headers = {}
        if idempotency["kind"] == "vendor" and idempotency.get("header"):
            extra_headers[str(idempotency["header"])] = text(render(idempotency.get("value", "{{ key }}"), scope))

        def find() -> ActionResult | None:
            return self._find(idempotency.get("find"), result_spec, scope)

        def send() -> ActionResult:
            # A create the vendor cannot deduplicate is never retried blind: create_once searches after an ambiguous failure.
            response = self.send(spec["request"], scope, retry=False if once else None, extra_headers=extra_headers)
            answer = {**scope, **response_scope(response), "response": response}
            records = select(result_spec.get("select"), answer["body"]) if result_spec.get("select") else [answer["body"]]
            record = records[0] if records else {}
            return action_result(result_spec, answer, record, created=holds(result_spec.get("created", True), {**answer, "record": record}))

        # Natural idempotency: the steps read the object; when it is already as asked, nothing is sent.
        if idempotency["kind"] == "natural" and "unchanged" in idempotency and holds(idempotency["unchanged"], scope):
            current = render(idempotency.get("current", "{{ body }}"), scope)
            return action_result(result_spec, scope, current, created=False)
        searches = bool(idempotency.get("find")) and not (known_new and idempotency.get("skip_search_when_new"))
        existing = find() if searches else None
        if existing is not None:
            return existing
        try:
            if once:
                return create_once(self.client, send, find, attempts=int(once.get("attempts", 4)), what=f"{self.manifest.key}.{action}")
            return send()
        except ApiError as exc:
            # The vendor refused a create it already has (a dedup key seen before): the earlier object is the answer.
            if not any(isinstance(exc, ERROR_CLASSES[kind]) for kind in idempotency.get("recover_on") or ()):
                raise
            again = find()
            if again is None:
                raise
            return again

    def _find(self, searches: list[Mapping[str, Any]] | None, result_spec: Mapping[str, Any], scope: dict[str, Any]) -> ActionResult | None:
        """The object an earlier attempt already made (its marker found by the action's `find` searches), else None."""
        for search in searches or []:
            for answer in self._search_pages(search, scope):
                for record in select(search.get("records"), answer["body"]):
                    if holds(search.get("match", True), {**answer, "record": record}):
                        return action_result(result_spec, answer, record, created=False)
        return None

    def _search_pages(self, search: Mapping[str, Any], scope: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """The answers of one marker search: its first page, then while `more` names a next page (up to max_pages)."""
        more = search.get("more") or {}
        answer = self.send_scoped(search["request"], scope)
        yield answer
        for _ in range(int(more.get("max_pages", 10)) - 1 if more else 0):
            following = render(more["next"], answer)
            if following in (None, ""):
                return
            answer = self.send_scoped(search["request"], scope, params_first={str(more["param"]): following})
            yield answer

    def perform_bulk(
        self, action: str, payloads: list[Mapping[str, Any]], *, idempotency_keys: list[str], known_new: bool = False
    ) -> list[ActionResult | Exception]:
        hook = self.hook("perform_bulk", action)
        if hook is not None:
            return hook(self, action, payloads, idempotency_keys=idempotency_keys, known_new=known_new)
        bulk = (self.spec.get("actions") or {}).get(action, {}).get("bulk")
        if not bulk:
            return super().perform_bulk(action, payloads, idempotency_keys=idempotency_keys, known_new=known_new)
        spec = self._action(action)
        idempotency = spec.get("idempotency") or {}
        memo: dict[str, Any] = {}  # a lookup every item needs (a section by name) is read once per call
        results: list[ActionResult | Exception | None] = [None] * len(payloads)
        scopes: list[dict[str, Any]] = [{} for _ in payloads]
        for index, (payload, key) in enumerate(zip(payloads, idempotency_keys, strict=True)):
            try:
                # Each item rendered with its own scope (input, key, marker, vars); the chunk's request sees them as `items`.
                scopes[index] = self.action_scope(spec, payload, key, memo=memo, known_new=known_new, action=action)
            except Exception as exc:  # noqa: BLE001 - an item refused before any call (a check) fails alone
                results[index] = exc
        searches = bool(idempotency.get("find")) and not (known_new and idempotency.get("skip_search_when_new"))
        if searches:
            self._bulk_find(bulk, spec, scopes, results)
        pending = [index for index, result in enumerate(results) if result is None]
        size = int(bulk.get("chunk", 100))
        for start in range(0, len(pending), size):
            chunk = pending[start : start + size]
            try:
                items = [render(bulk.get("item", {}), scopes[index], drop_none=True) for index in chunk]
                answer = self.send_scoped(bulk["request"], {**scopes[chunk[0]], "items": items})
                records = select(bulk.get("records"), answer["body"])
            except Exception as exc:  # noqa: BLE001 - every item of a failed chunk carries the chunk's error
                for index in chunk:
                    results[index] = exc
                continue
            for position, index in enumerate(chunk):
                record = records[position] if position < len(records) else None
                if record is None:
                    results[index] = ApiBadRequest(f"{self.manifest.name} answered no result for item {position + 1} of the batch.")
                else:
                    results[index] = self._bulk_item(bulk, spec, {**scopes[index], **_answered(answer)}, record)
        return [result if result is not None else ApiBadRequest("No result") for result in results]

    def _bulk_find(self, bulk: Mapping[str, Any], spec: Mapping[str, Any], scopes: list[dict[str, Any]], results: list[Any]) -> None:
        """Items an earlier attempt already made: `bulk.find` searched once for the whole call, else each item's own `find`."""
        result_spec = spec.get("result") or {}
        pending = [index for index, result in enumerate(results) if result is None]
        if not pending:
            return
        shared = bulk.get("find")
        try:
            if not shared:
                for index in pending:
                    results[index] = self._find((spec.get("idempotency") or {}).get("find"), result_spec, scopes[index])
                return
            for search in shared:
                for answer in self._search_pages(search, scopes[pending[0]]):
                    records = select(search.get("records"), answer["body"])
                    for index in [i for i in pending if results[i] is None]:
                        item = {**scopes[index], **_answered(answer)}
                        record = next((r for r in records if holds(search.get("match", True), {**item, "record": r})), None)
                        if record is not None:
                            results[index] = action_result(result_spec, item, record, created=False)
                    if all(results[i] is not None for i in pending):
                        break  # every item found: no further page is read
        except Exception as exc:  # noqa: BLE001 - without the search nothing may be created: every pending item waits for a retry
            for index in pending:
                if results[index] is None:
                    results[index] = exc

    def _bulk_item(self, bulk: Mapping[str, Any], spec: Mapping[str, Any], scope: dict[str, Any], record: Any) -> ActionResult | Exception:
        """One item's result; with `item_response` each result is an answer of its own (Asana's batch: status and body per action)."""
        if not bulk.get("item_response"):
            return action_result(bulk.get("result") or spec.get("result"), scope, record, created=True)
        answer = self._item_answer(bulk, scope, record)
        if isinstance(answer, Exception):
            return answer
        result_spec = bulk.get("result") or spec.get("result") or {}
        records = select(result_spec.get("select"), answer["body"]) if result_spec.get("select") else [answer["body"]]
        return action_result(result_spec, answer, records[0] if records else {}, created=True)

    def _item_answer(self, bulk: Mapping[str, Any], scope: dict[str, Any], record: Any) -> dict[str, Any] | ApiError:
        """One result of a bulk answer read as a response (`item_response`: status, body, headers): the scope with its body,
        or the error the spec's error table makes of it."""
        shape = bulk.get("item_response") or {}
        item = {**scope, "record": record}
        status = int(render(shape.get("status", "{{ record.status }}"), item) or 0)
        body = render(shape.get("body", "{{ record.body }}"), item)
        headers = render(shape.get("headers"), item) if shape.get("headers") else {}
        response = requests.Response()
        response.status_code = status
        response._content = json.dumps(body).encode()
        response.headers.update({"Content-Type": "application/json", **{str(k): str(v) for k, v in (headers or {}).items()}})
        error = self.classify_response(response, str(bulk["request"].get("path", "")))
        if error is not None or status >= 400:
            return error or ApiBadRequest(f"HTTP {status}")
        return {**scope, "body": body, "status": status, "headers": CaseInsensitive(headers if isinstance(headers, Mapping) else {})}


class UndoMixin:
    """undo() from each action's `undo` (Capability.UNDO)."""

    def undo(
        self, action: str, *, external_id: str, key: str = "", payload: Mapping[str, Any] | None = None, reason: str = "", idempotency_key: str
    ) -> ActionResult:
        hook = self.hook("undo", action)  # type: ignore[attr-defined]
        if hook is not None:
            return hook(self, action, external_id=external_id, key=key, payload=payload, reason=reason, idempotency_key=idempotency_key)
        spec = self._action(action)  # type: ignore[attr-defined]
        undo = spec.get("undo") or {}
        if "request" not in undo:
            raise NotImplementedError(f"{self.manifest.name} cannot undo '{action}'")  # type: ignore[attr-defined]
        scope = self.scope(  # type: ignore[attr-defined]
            action_vars=spec.get("vars"), external_id=external_id, id=external_id, key=idempotency_key, input=dict(payload or {}), reason=reason, action=action
        )
        scope["object_key"] = key
        if "skip" in undo and holds(undo["skip"], scope):  # nothing to put back (the action changed nothing)
            return ActionResult(external_id=external_id, created=False)
        answer = self.send_scoped(undo["request"], scope)  # type: ignore[attr-defined]
        if undo.get("result"):
            return action_result(undo["result"], answer, answer["body"], created=False)
        return ActionResult(external_id=external_id, created=False)


class FetchMixin:
    """fetch_objects() from `fetch_status` (Capability.FETCH_STATUS): a gone object is deleted and done."""

    def fetch_objects(self, kind: str, external_ids: list[str]) -> dict[str, TrackedObject]:
        hook = self.hook("fetch_objects", kind)  # type: ignore[attr-defined]
        if hook is not None:
            return hook(self, kind, external_ids)
        spec = (self.spec.get("fetch_status") or {}).get(kind)  # type: ignore[attr-defined]
        if spec is None:
            raise NotImplementedError(f"{self.manifest.name} cannot read '{kind}' objects back")  # type: ignore[attr-defined]
        if spec.get("bulk") and len(external_ids) > 1:
            return self._fetch_bulk(kind, spec, external_ids)
        out: dict[str, TrackedObject] = {}
        for external_id in external_ids:
            try:
                answer = self.send_scoped(spec["request"], self.scope(id=external_id, external_id=external_id, kind=kind))  # type: ignore[attr-defined]
            except ApiNotFound:
                out[external_id] = TrackedObject(status="deleted", is_done=True)
                continue
            records = select(spec.get("select"), answer["body"]) if spec.get("select") else [answer["body"]]
            out[external_id] = tracked_object(spec["tracked"], {**answer, "record": records[0] if records else {}})
        return out

    def _fetch_bulk(self, kind: str, spec: Mapping[str, Any], external_ids: list[str]) -> dict[str, TrackedObject]:
        """Many objects read in one request per chunk (Asana's batch of GETs); each result is read as its own answer.

        A result that is a 404 is a deleted object; any other refused one is left out (read again on the next poll).
        """
        bulk = spec["bulk"]
        out: dict[str, TrackedObject] = {}
        size = int(bulk.get("chunk", 100))
        for start in range(0, len(external_ids), size):
            chunk = external_ids[start : start + size]
            scopes = [self.scope(id=i, external_id=i, kind=kind) for i in chunk]  # type: ignore[attr-defined]
            items = [render(bulk.get("item", {}), scope, drop_none=True) for scope in scopes]
            answer = self.send_scoped(bulk["request"], {**scopes[0], "items": items})  # type: ignore[attr-defined]
            records = select(bulk.get("records"), answer["body"])
            for position, external_id in enumerate(chunk):
                if position >= len(records):
                    continue
                read = self._item_answer(bulk, {**scopes[position], **_answered(answer)}, records[position])  # type: ignore[attr-defined]
                if isinstance(read, ApiNotFound):
                    out[external_id] = TrackedObject(status="deleted", is_done=True)
                elif not isinstance(read, Exception):
                    found = select(spec.get("select"), read["body"]) if spec.get("select") else [read["body"]]
                    out[external_id] = tracked_object(spec["tracked"], {**read, "record": found[0] if found else {}})
        return out


class ChoicesMixin:
    """config_choices() from `options` (Capability.CONFIG_CHOICES): a form dropdown read live, searched when asked."""

    def config_choices(self, name: str) -> list[tuple[str, str]]:
        return self.choices(name)

    def choices(self, name: str, search: str = "") -> list[tuple[str, str]]:
        """(value, label) pairs of option `name`, filtered by the vendor when the option has a search_param."""
        hook = self.hook("config_choices", name)  # type: ignore[attr-defined]
        if hook is not None:
            return hook(self, name)
        spec = (self.spec.get("options") or {}).get(name)  # type: ignore[attr-defined]
        if spec is None:
            return []
        extra = {spec["search_param"]: search} if search and spec.get("search_param") else None
        scope = self.scope(search=search, name=name)  # type: ignore[attr-defined]
        answer = {**scope, **response_scope(self.send(spec["request"], scope, params_first=extra))}  # type: ignore[attr-defined]
        out = []
        for record in select(spec.get("records"), answer["body"]):
            item = {**answer, "record": record, "item": record}
            out.append((text(render(spec["value"], item)), text(render(spec["label"], item))))
        return out


class RegisterMixin:
    """register_webhook() through the spec's hook (Capability.WEBHOOK_REGISTRATION)."""

    def register_webhook(self, *, url: str, secret: str) -> dict[str, Any]:
        hook = self.hook("register_webhook")  # type: ignore[attr-defined]
        if hook is not None:
            return hook(self, url=url, secret=secret)
        spec = self.spec["webhooks"]["register"]  # type: ignore[attr-defined]
        answer = self.send_scoped(spec["request"], self.scope(url=url, secret=secret))  # type: ignore[attr-defined]
        registered = dict(render(spec.get("result") or {}, answer))
        for name, key in (("id", "id"), ("secret", "webhook_secret"), ("expires_at", "expires_at")):
            value = render(spec[name], answer) if spec.get(name) else None
            if value not in (None, ""):
                registered[key] = value
        return registered

    def refresh_webhooks(self, webhook_ids: list[Any]) -> Any:
        hook = self.hook("refresh_webhooks")  # type: ignore[attr-defined]
        if hook is None:
            raise NotImplementedError(f"{self.manifest.name} has no expiring webhook registrations")  # type: ignore[attr-defined]
        return hook(self, webhook_ids)


class DocumentsMixin:
    """browse_documents() through the spec's hook (Capability.DOCUMENTS): a file picker's listing is vendor logic, not a request."""

    def browse_documents(self, folder: str = "", *, query: str = "") -> list[DocumentItem]:
        return self.hook("browse_documents")(self, folder, query=query)  # type: ignore[attr-defined]


class DocumentValuesMixin:
    """read_document_values() through the spec's hook (Capability.DOCUMENT_VALUES): typed cells need the vendor's formats."""

    def read_document_values(self, document: str, names: list[str]) -> dict[str, Any]:
        return self.hook("read_document_values")(self, document, names)  # type: ignore[attr-defined]
