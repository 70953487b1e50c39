"""The declared engine: serves a vendor under /<vendor>/ from its OpenAPI document and a state description."""

from __future__ import annotations

import base64
import importlib
import re
import secrets
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, g, jsonify, request

from sandbox.declared import checking
from sandbox.declared.batch import run_batch
from sandbox.declared.description import Collection, Description, Route
from sandbox.declared.notifications import Notifications
from sandbox.declared.outbound import Outbound
from sandbox.declared.records import RecordError, Records, iso, matches
from sandbox.declared.shapes import search_rows, shape, toggle_reference
from sandbox.declared.tables import Tables
from sandbox.declared.webhooks import Webhooks
from sandbox.oauth import bearer_token, issue_static_token, token_info
from sandbox.state import STORE


def _fill(template: Any, values: dict[str, Any]) -> Any:
    if isinstance(template, str):
        return template.format(**values)
    if isinstance(template, list):
        return [_fill(v, values) for v in template]
    if isinstance(template, dict):
        return {k: _fill(v, values) for k, v in template.items()}
    return template


class DeclaredVendor:
    """What sandbox/server.py mounts for a vendor module: VENDOR, blueprints(), seed()."""

    def __init__(self, description: Description):
        self.d = description
        self.VENDOR = description.vendor
        self.records = Records(description)
        self.webhooks = Webhooks(description, self.records)
        # Topic notifications (one POST per change, HMAC over the body or static headers) instead of Asana's handshake style.
        self.notifications = Notifications(description, self.records) if description.webhooks.get("style") == "notification" else None
        self.behaviour = importlib.import_module(description.behaviour) if description.behaviour else None
        self.tables = Tables(self)  # ServiceNow-style tables (references.style link_value), off otherwise
        self.outbound = Outbound(description, self.records)  # a customer's own script posting changes (description.outbound)

    def rule(self, name: str) -> Any:
        """The vendor's own rule `name` from the description's behaviour module (`behaviour:`), or None."""
        return getattr(self.behaviour, name, None) if self.behaviour is not None else None

    # ---- answers in the vendor's envelopes
    def error(self, status: int, message: str, code: str = "") -> Response:
        values = {
            "message": message,
            "status": status,
            "code": code or str((self.d.errors.get("codes") or {}).get(status, "error")),
            "title": str((self.d.errors.get("titles") or {}).get(status, "Error")),
            "request_id": secrets.token_hex(10),
            "detail": str((self.d.errors.get("details") or {}).get(status, "")),
        }
        body = _fill(self.d.errors["template"], values)
        phrase = (self.d.errors.get("phrases") or {}).get(status)
        if phrase and isinstance(body.get("errors"), list):
            body["errors"][0]["phrase"] = phrase
        response = jsonify(body)
        response.status_code = status
        return response

    def rate_limited(self, retry_after: int) -> Response:
        response = self.error(429, self.d.errors.get("rate_limited", "Too many requests."))
        response.headers["Retry-After"] = str(retry_after)
        # The vendor's own rate-limit headers ({reset}: the Unix second the window reopens; Intercom's X-RateLimit-Reset).
        reset = int(datetime.now(UTC).timestamp()) + retry_after
        for name, value in (self.d.errors.get("rate_limit_headers") or {}).items():
            response.headers[name] = str(value).format(reset=reset, retry_after=retry_after)
        if self.d.errors.get("rate_limit_headers") and not self.d.errors.get("retry_after_header", True):
            del response.headers["Retry-After"]
        return response

    def wrap(self, data: Any, collection: Collection | None = None, *, many: bool = False, **extra: Any) -> dict[str, Any]:
        own = collection.envelope if collection else {}
        key = own.get("many" if many else "one") or self.d.envelope.get("answer")
        return {key: data, **extra} if key else data

    def token(self) -> str | None:
        """The caller's credential: a bearer token, or for a Basic-auth vendor the decoded "username:password"."""
        if self.d.auth.get("style") != "basic":
            return bearer_token()
        header = request.headers.get("Authorization", "")
        if not header.lower().startswith("basic "):
            return None
        try:
            return base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return None

    def shown(self, collection: Collection, record: dict[str, Any], query: dict[str, str], *, full: bool) -> dict[str, Any]:
        if self.tables.enabled:
            return self.tables.shown(collection, record, query)
        return self.records.render(collection, self.records.select(collection, record, query.get(self.d.fields_param), full=full))

    def me(self) -> str | None:
        """The token's user; a token minted by /_control/tokens (subject "sandbox-admin") acts as the first described one."""
        info = g.get("sandbox_caller") or (self.tables.caller() if self.tables.enabled else token_info(self.VENDOR, self.token()))
        if info is None:
            return None
        subject = str(info.get("subject") or "")
        if self.records.find_any(subject) is not None:
            return subject
        return next((str(t["user"]) for t in self.d.auth.get("tokens") or () if t.get("user")), subject or None)

    def seed(self) -> None:
        for entry in self.d.auth.get("tokens") or ():
            token = entry.get("token") or f"{entry['username']}:{entry['password']}"  # Basic: api_key:secret_key
            issue_static_token(self.VENDOR, token, subject=str(entry.get("user") or "sandbox-admin"))
        with STORE.lock:
            for collection in _seed_order(self.d):
                self.records.seed(collection)

    # ---- the API
    def blueprints(self) -> list[Blueprint]:
        from sandbox.server import install_faults

        api = Blueprint(f"declared_{self.VENDOR}_api", __name__)
        control = Blueprint(f"declared_{self.VENDOR}_control", __name__)
        install_faults(api, self.VENDOR, rate_limited=self.rate_limited, error=self.error)
        base = self.d.base_path

        @api.before_request
        def _authenticate():
            if self.tables.enabled:
                return self.tables.authenticate()
            if token_info(self.VENDOR, self.token()) is None:
                return self.error(401, self.d.errors.get("unauthorized", "Not Authorized"))
            return None

        self.tables.install(api)

        # One Flask rule per described path: wrong methods and unknown paths get Flask's 405 (with Allow) and 404,
        # rendered in the vendor's envelope by sandbox/server.py like every stand-in's.
        methods: dict[str, set[str]] = {}
        for route in self.d.routes:
            methods.setdefault(route.path, set()).add(route.method)
        for index, (path, allowed) in enumerate(methods.items()):
            rule = base + re.sub(r"\{([^}]+)\}", r"<\1>", path)
            api.add_url_rule(rule, endpoint=f"route_{index}", view_func=lambda **_params: self.serve(), methods=sorted(allowed))

        self._controls(control)
        return [api, control]

    def serve(self) -> Response:
        spec_path = request.path.removeprefix(f"/{self.VENDOR}{self.d.base_path}")
        query = request.args.to_dict()
        body = request.get_json(silent=True) if request.data else None
        status, answer, headers = self.answer(request.method, spec_path, query, body, headers=dict(request.headers))
        if status < 300 and self._answer_lost(request.method, spec_path):
            return self.error(502, "Bad gateway (sandbox: the request was carried out, its answer lost)")
        response = jsonify(answer) if answer is not None or status != 204 else Response(status=204)
        response.status_code = status
        response.headers.update(headers)
        return response

    def answer(self, method: str, spec_path: str, query: dict[str, str], body: Any, *, headers: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        """One exchange checked against the spec both ways: a request over HTTP, or one action of a batch."""
        route, params, exists = self.d.route_for(method, spec_path)
        if route is None:
            status = 405 if exists else 404
            message = f"{method} {spec_path} is not a route here." if exists else f"No matching route for request: {spec_path}"
            return status, self.error(status, message).get_json(), {}
        where = f"/{self.VENDOR}{self.d.base_path}{spec_path}"
        problems = checking.request_problems(self.d, spec_path, method, query=query, headers=headers, body=body)
        if problems:
            checking.record_mismatch(self.VENDOR, method, where, 400, [f"request refused: {p}" for p in problems])
            return 400, self.error(400, "; ".join(problems)).get_json(), {}
        try:
            before = self.rule("before_request")
            if before is not None:
                before(self, route, params, query)
            status, answer, extra = self.perform(route, params, query, body, method=method, spec_path=spec_path)
        except RecordError as refused:
            status, answer, extra = refused.status, self.error(refused.status, refused.message, refused.code).get_json(), {}
        problems = checking.answer_problems(self.d, spec_path, method, status=status, answer=answer)
        if problems:
            checking.record_mismatch(self.VENDOR, method, where, status, [f"answer {status}: {p}" for p in problems])
        return status, answer, extra

    def perform(
        self, route: Route, params: dict[str, str], query: dict[str, str], body: Any, *, method: str = "", spec_path: str = ""
    ) -> tuple[int, Any, dict[str, str]]:
        method = method or request.method
        if route.op == "events":
            rules = self.d.events
            status, answer = self.webhooks.feed(query.get(rules.get("resource_param", "resource"), ""), query.get(rules.get("sync_param", "sync")))
            return status, answer, {}
        if route.op == "batch":
            return 200, self.wrap(run_batch(self, body)), {}
        collection = self.d.collections[route.collection]
        table = self.records.table(collection.name)
        data = self._input(body, collection) if method in ("POST", "PUT", "PATCH") else {}
        if route.op == "list":
            answer = self._list(route, params, query, spec_path)
            return 200, answer, dict(g.pop("answer_headers", {}))
        if route.op == "search":
            return 200, self._search(route, body if isinstance(body, dict) else {}), {}
        if route.op == "webhook_create" and self.notifications is not None:
            hook = self.notifications.subscribe(data)
            return route.status or 201, self.wrap(shape(self.d.webhooks.get("created") or {"id": "$id"}, hook)), {}
        if route.op == "create":
            if route.upsert_on and data.get(route.upsert_on):
                wanted = str(data[route.upsert_on]).lower()
                found = next((r for r in table.values() if str(r.get(route.upsert_on, "")).lower() == wanted), None)
                if found is not None:
                    return route.status or 201, self.wrap(self.shown(collection, found, {}, full=True), collection, **route.extra), {}
        if route.op in ("create", "webhook_create"):
            if collection.create_requires_one_of and not any(data.get(n) for n in collection.create_requires_one_of):
                raise RecordError(400, f"You should specify one of {', '.join(collection.create_requires_one_of)}")
            if route.op == "webhook_create":
                hook, secret = self.webhooks.subscribe(collection, data)
                header = self.d.webhooks.get("handshake", {}).get("header", "X-Hook-Secret")
                return 201, self.wrap(hook), {header: secret}
            for name, param in route.assign.items():  # a path naming a record that is not there (a task's comments) is a 404
                if name in collection.refs and self.records.find_any(params[param]) is None:
                    raise RecordError(404, _fill(self.d.errors.get("not_found", "Unknown object: {id}"), {"id": params[param]}))
            data = {**data, **{name: params[param] for name, param in route.assign.items()}}
            before_create = self.rule("before_create")
            if before_create is not None:
                data = before_create(self, collection, data)
            key = self.records.id_field(collection)
            with STORE.lock:
                record = self.records.build(collection, data, me=self.me())
                table[record[key]] = record
            summary = str(record.get("name") or record.get("emailSubject") or record.get(self.d.ids.get("summary_field", "name")) or "")
            STORE.record_created(self.VENDOR, collection.resource_type, record[key], summary, record.get("permalink_url", ""))
            self._notify(collection, record, "added")
            create_answer = self.rule("create_answer")
            if create_answer is not None:
                return route.status or 201, create_answer(self, collection, record), {}
            headers = self.tables.location(collection, record) if self.tables.enabled else {}
            return route.status or 201, self.wrap(self.shown(collection, record, query, full=True), collection, **route.extra), headers
        if route.op == "delete" and self.notifications is not None and route.collection == self._hook_collection():
            if not self.notifications.unsubscribe(next(iter(params.values()), "")):
                raise RecordError(404, _fill(self.d.errors.get("not_found", "Unknown object: {id}"), {"id": next(iter(params.values()), "")}))
            return route.status or 204, None, {}
        # The record is the route's id_param or its last path parameter (/accounts/{a}/envelopes/{e}); none (/me) is the caller.
        gid = self._resolve_gid(params[route.id_param] if route.id_param else next(reversed(params.values()), "me"))
        record = self.records.lookup(collection, gid)
        if record is not None:
            gid = str(record[self.records.id_field(collection)])
        if record is None:
            raise RecordError(
                int(self.d.errors.get("not_found_status", 404)),
                _fill(self.d.errors.get("not_found", "Unknown object: {id}"), {"id": gid}),
                str((self.d.errors.get("not_found_codes") or {}).get(collection.name, "")),
            )
        if route.op in ("attach", "detach"):
            wanted = list(params.values())[-1] if route.op == "detach" else str(data.get(route.attach.get("id_param", self.records.id_field())) or "")
            return 200, self._attach(route, collection, record, wanted, remove=route.op == "detach"), {}
        if route.op == "read":
            return route.status or 200, self.wrap(self.shown(collection, record, query, full=True), collection, **route.extra), {}
        if route.op == "update":
            before_update = self.rule("before_update")
            if before_update is not None:
                data = before_update(self, collection, record, data)
            with STORE.lock:
                changed = self.records.apply_update(collection, record, data, me=self.me())
            if changed:
                self._notify(collection, record, "changed", changed=changed)
            update_answer = self.rule("update_answer")
            if update_answer is not None:
                return route.status or 200, update_answer(self, collection, record), {}
            return route.status or 200, self.wrap(self.shown(collection, record, query, full=True), collection, **route.extra), {}
        with STORE.lock:
            table.pop(gid, None)
        self._notify(collection, record, "deleted")
        if route.status == 204:
            return 204, None, {}
        return route.status or 200, {} if collection.shape == "jsonapi" else self.wrap({}), {}

    def _answer_lost(self, method: str, spec_path: str) -> bool:
        """Whether a test asked for this request's answer to be lost (done, but the client sees a 502: an ambiguous failure)."""
        with STORE.lock:
            pending = STORE.collection(self.VENDOR, "_lose_answers").setdefault("pending", [])
            for index, rule in enumerate(pending):
                if rule.get("method", method).upper() == method and re.fullmatch(str(rule.get("path", ".*")), spec_path):
                    pending.pop(index)
                    return True
        return False

    def _notify(self, collection: Collection, record: dict[str, Any], action: str, *, changed: list[str] | None = None) -> None:
        """A change seen by subscribers: Asana-style webhooks and the events feed, or topic notifications."""
        if self.notifications is not None:
            self.notifications.event(collection, record, action, changed=changed)
        else:
            self.webhooks.event(collection, record, action, user=self._actor(), changed=changed)
        after_change = self.rule("after_change")  # the vendor's own notifications (DocuSign's Connect)
        if after_change is not None:
            after_change(self, collection, record, action, changed or [])
        if action in ("added", "changed"):
            self.outbound.changed(collection, record, "insert" if action == "added" else "update")

    def changed(self, collection: Collection, record: dict[str, Any], action: str, changed: list[str] | None = None) -> None:
        """A change a person made in the vendor's UI (a behaviour module's control): the same notifications as the API's."""
        self._notify(collection, record, action, changed=changed)

    def _input(self, body: Any, collection: Collection) -> dict[str, Any]:
        key = collection.envelope.get("request") or self.d.envelope.get("request")
        data = body.get(key) if key and isinstance(body, dict) else body
        if collection.shape == "jsonapi" and isinstance(data, dict):
            data = data.get("attributes")
        if not isinstance(data, dict):
            raise RecordError(400, f"Could not parse request data: expected an object under {key!r}" if key else "Could not parse request data")
        return data

    def _resolve_gid(self, gid: str) -> str:
        return (self.me() or gid) if gid == "me" else gid

    def _actor(self) -> str | None:
        tokens = self.d.auth.get("tokens") or [{}]
        return self.me() or tokens[0].get("user")

    def _list(self, route: Route, params: dict[str, str], query: dict[str, str], spec_path: str = "") -> dict[str, Any]:
        collection = self.d.collections[route.collection]
        if route.require_one_of:
            given = {name for name in query if query[name]}
            if not any(set(names) <= given for names in route.require_one_of["sets"]):
                raise RecordError(400, route.require_one_of.get("message", "A filter is required"))
        rows = list(self.records.table(collection.name).values())
        for name, rule in route.bind.items():
            if self.records.find_any(params[name]) is None:
                raise RecordError(404, _fill(self.d.errors.get("not_found", "Unknown object: {id}"), {"id": params[name]}))
            rows = [r for r in rows if matches(r, rule, params[name], self.records.id_field())]
        for name, rule in route.filters.items():
            if query.get(name) and rule.get("op") == "encoded_query":
                rows = self.tables.filtered(collection, rows, query[name])
            elif query.get(name):
                value = self._resolve_gid(query[name])
                rows = [r for r in rows if matches(r, rule, value, self.records.id_field())]
        if self.d.paging.get("style") == "link_header":
            chunk, g.answer_headers = self.tables.page(collection, rows, query)
            return self.wrap(chunk)
        # Lists answer compact records plus the opt_fields-style parameter's; `paging.whole_records` answers whole ones (Intercom).
        shown = [self.shown(collection, r, query, full=bool(self.d.paging.get("whole_records"))) for r in rows]
        answer = self._page(shown, query, collection, route, spec_path)
        if route.included:
            on_page = {str(r.get("id")) for r in answer.get(self.d.envelope.get("answer") or "data") or [] if isinstance(r, dict)}
            answer["included"] = self._included([r for r in rows if str(r.get(self.records.id_field())) in on_page], route.included)
        return answer

    def _included(self, rows: list[dict[str, Any]], fields: tuple[str, ...]) -> list[dict[str, Any]]:
        """The records the rows reference in `fields`, each once, as a JSON:API `included` list."""
        found: dict[str, dict[str, Any]] = {}
        for row in rows:
            for name in fields:
                refs = row.get(name) if isinstance(row.get(name), list) else [row.get(name)]
                for ref in refs:
                    hit = self.records.find_any(str(ref.get(self.records.id_field()))) if isinstance(ref, dict) else None
                    if hit is not None:
                        found.setdefault(str(ref[self.records.id_field()]), self.records.render(hit[0], dict(hit[1])))
        return list(found.values())

    def _search(self, route: Route, body: dict[str, Any]) -> dict[str, Any]:
        """A structured search (Intercom's POST /contacts/search): query tree, paging from the body's `pagination`."""
        collection = self.d.collections[route.collection]
        rows, per_page, after = search_rows(list(self.records.table(collection.name).values()), body, route.search)
        position = {self.d.paging.get("limit_param", "limit"): per_page, self.d.paging.get("cursor_param", "cursor"): after}
        shown = [self.shown(collection, r, {}, full=True) for r in rows]
        return self._page(shown, {k: str(v) for k, v in position.items() if v not in (None, "")}, collection, route)

    def _attach(self, route: Route, collection: Collection, record: dict[str, Any], wanted: str, *, remove: bool = False) -> Any:
        """Add a reference to another record into a list of the bound one (tag a contact), or remove it (`detach`);
        already there (or already gone) → unchanged. Answers the referenced record."""
        target_collection = self.d.collections[route.attach["collection"]]
        target = self.records.table(target_collection.name).get(wanted)
        if target is None:
            raise RecordError(404, _fill(self.d.errors.get("not_found", "Unknown object: {id}"), {"id": wanted}))
        with STORE.lock:
            changed = toggle_reference(record, route.attach, target, self.records.id_field(), remove=remove)
            modified = collection.stamps.get("modified")
            if changed and modified:
                now = datetime.now(UTC)
                record[modified] = int(now.timestamp()) if collection.stamps.get("format") == "epoch" else iso(now)
        if changed:
            self._notify(collection, record, "changed", changed=changed)
        return self.wrap(self.shown(target_collection, target, {}, full=True), target_collection)

    def _hook_collection(self) -> str:
        return next((r.collection for r in self.d.routes if r.op == "webhook_create"), "webhooks")

    # ---- paging
    def _page(
        self, rows: list[dict[str, Any]], query: dict[str, str], collection: Collection, route: Route | None = None, spec_path: str = ""
    ) -> dict[str, Any]:
        paging = self.d.paging
        # The list's own path: the request's, or a batch action's relative_path.
        spec_path = spec_path or request.path.removeprefix(f"/{self.VENDOR}{self.d.base_path}")
        if paging.get("style") == "page_number":
            return self._page_number(rows, query, collection)
        if paging.get("style") == "position":
            return self._position_page(rows, query, route.list_field if route is not None and route.list_field else "data")
        # The vendor's whole list shape ($rows, $next…): a route's own, or the description's for cursor/offset paging.
        template = route.answer if route is not None and route.answer is not None else paging.get("answer")
        if paging.get("style") == "none" or (route is not None and not route.paged):
            return shape(template, {"rows": rows, "total": len(rows)}) if template is not None else self.wrap(rows, collection, many=True)
        limit = int(query.get(paging.get("limit_param", "limit")) or paging.get("default_limit", 20))
        limit = min(max(limit, 1), int(paging.get("max_limit", 100)))
        token_param = paging.get("offset_param") or paging.get("cursor_param") or "offset"
        start = 0
        if query.get(token_param):
            with STORE.lock:
                start = STORE.collection(self.VENDOR, "_page_tokens").get(query[token_param], -1)
            if start < 0:
                raise RecordError(400, f"{token_param}: Your pagination token is invalid or has expired.")
        chunk, more = rows[start : start + limit], start + limit < len(rows)
        token = None
        if more:
            token = base64.urlsafe_b64encode(secrets.token_bytes(24)).decode().rstrip("=")
            with STORE.lock:
                STORE.collection(self.VENDOR, "_page_tokens")[token] = start + limit
        if template is not None:  # the vendor's own list shape: Intercom's pages.next.starting_after, Productboard's links.next
            next_url = None
            if token:
                following = urlencode({**query, token_param: token})
                next_url = request.host_url.rstrip("/") + f"/{self.VENDOR}{self.d.base_path}{spec_path}" + "?" + following
            values = {"rows": chunk, "next": token, "next_url": next_url, "limit": limit, "total": len(rows)}
            values |= {"page": start // limit + 1, "total_pages": max(1, -(-len(rows) // limit))}
            return shape(template, values)
        if paging["style"] == "cursor":
            return self.wrap(chunk, collection, many=True, **{paging.get("next_field", "next_cursor"): token})
        next_page = None
        if token:
            following = {**query, token_param: token, paging.get("limit_param", "limit"): str(limit)}
            path = spec_path + "?" + urlencode(following)
            next_page = {"offset": token, "path": path, "uri": request.host_url.rstrip("/") + f"/{self.VENDOR}{self.d.base_path}{path}"}
        return self.wrap(chunk, collection, many=True, **{paging.get("next_field", "next_page"): next_page})

    def _page_number(self, rows: list[dict[str, Any]], query: dict[str, str], collection: Collection) -> dict[str, Any]:
        """page/per_page paging: the answer carries the description's `answer` fields ({page}, {pages}, {total}, {per})."""
        paging = self.d.paging
        try:
            page = int(query.get(paging.get("page_param", "page")) or 1)
            per = int(query.get(paging.get("limit_param", "per_page")) or paging.get("default_limit", 30))
        except ValueError:
            raise RecordError(400, "page and page size must be whole numbers") from None
        per = min(max(per, 1), int(paging.get("max_limit", 200)))
        page = max(page, 1)
        pages = max(1, -(-len(rows) // per))
        values = {
            "page": page,
            "pages": pages,
            "total": len(rows),
            "per": per,
            "next": page + 1 if page < pages else None,
            "prev": page - 1 if page > 1 else None,
        }
        return self.wrap(rows[(page - 1) * per : page * per], collection, many=True, **_typed(paging.get("answer") or {}, values))

    def _position_page(self, rows: list[dict[str, Any]], query: dict[str, str], list_field: str) -> dict[str, Any]:
        """start_position + count paging (DocuSign): the page and where it sits in the whole result, numbers as strings."""
        paging = self.d.paging
        names = {"start": "startPosition", "end": "endPosition", "size": "resultSetSize", "total": "totalSetSize", **(paging.get("fields") or {})}
        try:
            start = int(query.get(paging.get("start_param", "start_position")) or 0)
            count = int(query.get(paging.get("count_param", "count")) or paging.get("default_count", 100))
        except ValueError:
            raise RecordError(400, "start_position and count must be whole numbers.") from None
        if start < 0 or count < 1:
            raise RecordError(400, "start_position must be 0 or more and count 1 or more.")
        chunk = rows[start : start + min(count, int(paging.get("max_count", 1000)))]
        numbers = {names["start"]: start, names["end"]: start + len(chunk) - 1, names["size"]: len(chunk), names["total"]: len(rows)}
        answer: dict[str, Any] = {k: str(v) if paging.get("as_strings") else v for k, v in numbers.items()}
        if chunk:
            answer[list_field] = chunk  # an empty page has no list at all, as DocuSign answers
        return answer

    # ---- the stand-in's own controls (not the vendor's API)
    def _controls(self, control: Blueprint) -> None:
        @control.route("/_sandbox/records/<collection>/<gid>", methods=["GET", "PATCH", "DELETE"])
        def record(collection: str, gid: str):
            """Change a record as a person would in the vendor's own UI: stamps move, webhooks and events fire."""
            if collection not in self.d.collections:
                return self.error(404, f"No collection {collection}")
            table = self.records.table(collection)
            found = table.get(gid)
            if found is None:
                return self.error(404, f"Unknown object: {gid}")
            if request.method == "PATCH":
                try:
                    with STORE.lock:
                        changed = self.records.apply_update(self.d.collections[collection], found, request.get_json(force=True) or {}, me=None)
                except RecordError as refused:
                    return self.error(refused.status, refused.message)
                if changed:
                    self._notify(self.d.collections[collection], found, "changed", changed=changed)
            elif request.method == "DELETE":
                with STORE.lock:
                    table.pop(gid, None)
                self._notify(self.d.collections[collection], found, "deleted")
            return jsonify(found)

        @control.post("/_sandbox/webhooks/<gid>/deliver")
        def deliver(gid: str):
            """Deliver events now (a test's own, or a heartbeat of none); `forge` signs them without the real secret."""
            body = request.get_json(force=True) or {}
            try:
                if self.notifications is not None:  # events: [{topic, item} | {payload}] (a ping, a topic of the test's own)
                    return jsonify(self.notifications.deliver(gid, list(body.get("events") or []), forge=bool(body.get("forge"))))
                return jsonify(self.webhooks.deliver(gid, list(body.get("events") or []), forge=bool(body.get("forge"))))
            except RecordError as refused:
                return self.error(refused.status, refused.message)

        @control.route("/_sandbox/subscriptions", methods=["GET", "POST"])
        def subscriptions():
            """Subscriptions a vendor makes in its own UI, not its API (Intercom's Developer Hub): {url, topics}."""
            if self.notifications is None:
                return self.error(404, "This stand-in has no topic notifications")
            if request.method == "GET":
                return jsonify(self.notifications.subscriptions())
            try:
                return jsonify(self.notifications.subscribe(request.get_json(force=True) or {}, api=False)), 201
            except RecordError as refused:
                return self.error(refused.status, refused.message)

        self.outbound.controls(control, self.error)

        @control.post("/_sandbox/lose-answer")
        def lose_answer():
            """The next request matching {method, path (a regex over the spec's path)} is carried out but answered 502."""
            rule = request.get_json(force=True) or {}
            with STORE.lock:
                STORE.collection(self.VENDOR, "_lose_answers").setdefault("pending", []).append(
                    {"method": rule.get("method", "POST"), "path": rule.get("path", ".*")}
                )
            return jsonify(rule), 201

        @control.get("/_sandbox/deliveries")
        def deliveries():
            with STORE.lock:
                return jsonify(list(STORE.collection(self.VENDOR, "_deliveries").get("all", [])))

        @control.get("/_sandbox/hook-secrets/<gid>")
        def hook_secret(gid: str):
            """The secret a subscription was handshaken with (what the subscriber kept), for tests that relay deliveries."""
            with STORE.lock:
                secret = STORE.collection(self.VENDOR, "_hook_secrets").get(gid)
            return jsonify({"secret": secret}) if secret else self.error(404, f"Unknown object: {gid}")


def _typed(template: Any, values: dict[str, Any]) -> Any:
    """A template whose strings that are exactly "{name}" take the value itself (a number, None), not its text."""
    if isinstance(template, str):
        whole = re.fullmatch(r"\{(\w+)\}", template)
        return values[whole.group(1)] if whole else template.format(**values)
    if isinstance(template, dict):
        return {k: _typed(v, values) for k, v in template.items()}
    if isinstance(template, list):
        return [_typed(v, values) for v in template]
    return template


def _seed_order(description: Description) -> list[Collection]:
    """Collections a seed references come first (projects before the tasks in them); a reference to itself is fine."""
    ordered: list[Collection] = []
    pending = dict(description.collections)
    while pending:
        ready = [c for c in pending.values() if all((t[0] if isinstance(t, list) else t) in {o.name for o in ordered} | {c.name} for t in c.refs.values())]
        for collection in ready or list(pending.values()):  # a cycle is seeded as declared
            ordered.append(pending.pop(collection.name))
    return ordered
