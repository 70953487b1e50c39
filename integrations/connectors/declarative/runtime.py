"""The compiled connector's base: scope, variables, requests, the error table, the connection test and hooks."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from functools import lru_cache
from types import ModuleType
from typing import Any, ClassVar

import requests
from jsonpath_ng import parse as jsonpath_parse

from integrations.connectors.base import BaseConnector, ConnectionTest
from integrations.connectors.declarative.auth import auth_provider
from integrations.connectors.declarative.template import holds, render
from integrations.errors import (
    ApiBadRequest,
    ApiConflict,
    ApiError,
    ApiForbidden,
    ApiHostError,
    ApiNotFound,
    ApiQuotaExhausted,
    ApiRateLimited,
    ApiUnauthorized,
)
from integrations.http import classify_status, generic_error_message, parse_retry_after, rate_limit_wait, response_json

ERROR_CLASSES: dict[str, type[ApiError]] = {
    "unauthorized": ApiUnauthorized,
    "forbidden": ApiForbidden,
    "not_found": ApiNotFound,
    "conflict": ApiConflict,
    "bad_request": ApiBadRequest,
    "host_error": ApiHostError,
}


class CaseInsensitive(Mapping[str, Any]):
    """Headers as templates read them: `headers['x-signature']` finds X-Signature."""

    def __init__(self, items: Mapping[str, Any] | None):
        self._items = {str(k).lower(): v for k, v in (items or {}).items()}

    def __getitem__(self, key: str) -> Any:
        return self._items[str(key).lower()]

    def get(self, key: Any, default: Any = None) -> Any:
        return self._items.get(str(key).lower(), default)

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


class Variables(Mapping[str, Any]):
    """`vars.x`: each variable rendered when first read; a required one that renders empty is a 400 naming it."""

    def __init__(self, definitions: Mapping[str, Any], scope: dict[str, Any], connector: str):
        self._definitions = definitions
        self._scope = scope
        self._values: dict[str, Any] = {}
        self._connector = connector
        self._busy: set[str] = set()

    def __getitem__(self, key: str) -> Any:
        if key not in self._definitions:
            raise KeyError(key)
        if key not in self._values:
            if key in self._busy:
                raise ApiBadRequest(f"{self._connector}: variable '{key}' refers to itself.")
            self._busy.add(key)
            try:
                definition = self._definitions[key]
                template, required = (definition.get("value"), definition.get("required")) if isinstance(definition, Mapping) else (definition, None)
                value = render(template, self._scope)
                if required and value in (None, ""):
                    raise ApiBadRequest(str(required))
                self._values[key] = value
            finally:
                self._busy.discard(key)
        return self._values[key]

    def get(self, key: Any, default: Any = None) -> Any:
        return self[key] if key in self._definitions else default

    def __iter__(self) -> Iterator[str]:
        return iter(self._definitions)

    def __len__(self) -> int:
        return len(self._definitions)


@lru_cache(maxsize=1024)
def _jsonpath(text: str) -> Any:
    return jsonpath_parse(text)


def select(path: str | None, body: Any) -> list[Any]:
    """The records at a JSONPath: one list found is the records; a missing path none; an object found is one record."""
    if body is None:
        return []
    if not path or path == "$":
        matches = [body]
    else:
        matches = [match.value for match in _jsonpath(path).find(body)]
    if len(matches) == 1 and isinstance(matches[0], list):
        return list(matches[0])
    return [m for m in matches if m is not None]


def text(value: Any) -> str:
    return "" if value is None else str(value)


def response_scope(response: requests.Response) -> dict[str, Any]:
    """What templates see of an answer: body (JSON when it is), headers, status."""
    body = response_json(response)
    if body is None and response.content and "json" not in response.headers.get("Content-Type", ""):
        body = response.text
    return {"body": body, "headers": CaseInsensitive(response.headers), "status": response.status_code}


class DeclarativeConnector(BaseConnector):
    """What every compiled spec shares; compile_spec subclasses it with the spec, the manifest and the hooks."""

    spec: ClassVar[Mapping[str, Any]] = {}
    hooks: ClassVar[ModuleType | None] = None

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self._query_auth: tuple[str, str] | None = None
        if self.client is None:
            return
        scope = self.scope()
        provider_hook = self.hook("auth")
        if self.client.auth is None:
            # Only without auth of its own: an OAuth connection arrives with Bastion's refreshing provider installed.
            self.client.auth = provider_hook(self) if provider_hook else auth_provider(self.spec.get("auth"), self.client, scope)
        auth = self.spec.get("auth") or {}
        if auth.get("kind") == "query" and holds(auth.get("when"), scope):
            self._query_auth = (str(auth["param"]), text(render(auth["value"], scope)))
        for name, value in render(self.spec.get("default_headers") or {}, scope, drop_none=True).items():
            self.client.default_headers.setdefault(name, text(value))
        observe = self.hook("observe_response")
        if observe is not None:
            inner = self.client.classify

            def classify(response: requests.Response, path: str) -> ApiError | None:
                observe(self, response)
                return inner(response, path)

            self.client.classify = classify

    # Hooks: `hooks: {point: function}` or `{point:name: function}` for one entity/action.
    @classmethod
    def hook(cls, point: str, name: str = "") -> Callable[..., Any] | None:
        table = cls.spec.get("hooks") or {}
        function = table.get(f"{point}:{name}") if name else None
        function = function or table.get(point)
        return getattr(cls.hooks, function) if function and cls.hooks is not None else None

    # Scope
    def scope(self, *, action_vars: Mapping[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
        """The names a template sees: config, credentials, vars, const, now, plus what the step adds."""
        scope: dict[str, Any] = {
            "config": self.config,
            "credentials": self.credentials,
            "const": self.spec.get("constants") or {},
            "now": datetime.now(UTC),
            # The connection's API root: a vendor with a second API host derives it (Google Sheets → Drive).
            "base_url": self.client.base_url if self.client is not None else "",
            **extra,
        }
        definitions = {**(self.spec.get("variables") or {}), **(action_vars or {})}
        scope["vars"] = Variables(definitions, scope, self.manifest.name)
        return scope

    # Requests
    def resolve(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """A request with the named request it `use`s merged under it."""
        named = self.spec.get("requests") or {}
        chain = [request]
        while chain[-1].get("use") in named and len(chain) < 10:
            chain.append(named[chain[-1]["use"]])
        merged: dict[str, Any] = {}
        for layer in reversed(chain):
            merged.update({k: v for k, v in layer.items() if k != "use"})
        return merged

    def send(
        self,
        request: Mapping[str, Any],
        scope: Mapping[str, Any],
        *,
        retry: bool | None = None,
        params_first: Mapping[str, Any] | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> requests.Response:
        """Render a request of the spec and send it through the HttpClient (auth, retries, limits, SSRF guard)."""
        spec = self.resolve(request)
        path = text(render(spec.get("path", ""), scope))
        params = dict(params_first or {})
        params.update(render(spec.get("query") or {}, scope, drop_none=True))
        if self._query_auth is not None:
            params.setdefault(*self._query_auth)
        headers = {name: text(value) for name, value in render(spec.get("headers") or {}, scope, drop_none=True).items()}
        headers.update(extra_headers or {})
        kwargs: dict[str, Any] = {}
        if params:
            kwargs["params"] = params
        if headers:
            kwargs["headers"] = headers
        if "json" in spec:
            kwargs["json"] = render(spec["json"], scope, drop_none=True)
        if "form" in spec:
            kwargs["data"] = render(spec["form"], scope, drop_none=True)
        allowed = spec.get("retry", True) if retry is None else retry
        if not allowed:
            kwargs["retry"] = False
        return self.client.request(str(spec.get("method") or "GET"), path, **kwargs)

    def run_steps(self, steps: list[Mapping[str, Any]] | None, scope: dict[str, Any], *, memo: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send each step (in order, each seeing the ones before): `steps.<name>.body/.records/.status/.error`.

        A step marked `optional` that the vendor refuses leaves its error instead of failing the whole call. With `memo`
        (one bulk call), a GET rendered the same as an earlier item's is answered from it instead of sent again.
        """
        scope["steps"] = answers = dict(scope.get("steps") or {})
        for step in steps or []:
            if "when" in step and not holds(step["when"], scope):
                continue
            key = self._memo_key(step["request"], scope) if memo is not None else None
            if key is not None and memo is not None and key in memo:
                answers[step["name"]] = memo[key]
                continue
            try:
                answer = self.send_scoped(step["request"], scope)
            except ApiError as exc:
                if not step.get("optional") or isinstance(exc, ApiRateLimited | ApiUnauthorized | ApiHostError):
                    raise
                answers[step["name"]] = {"body": None, "records": [], "status": exc.status, "error": exc.message}
                continue
            answers[step["name"]] = {"body": answer["body"], "records": select(step.get("records"), answer["body"]), "status": answer["status"], "error": ""}
            if key is not None and memo is not None:
                memo[key] = answers[step["name"]]
        return scope

    def _memo_key(self, request: Mapping[str, Any], scope: Mapping[str, Any]) -> str | None:
        """What identifies a read for reuse within one call (path and query as rendered); None for anything but a GET."""
        spec = self.resolve(request)
        if str(spec.get("method") or "GET").upper() != "GET":
            return None
        return json.dumps([text(render(spec.get("path", ""), scope)), render(spec.get("query") or {}, scope, drop_none=True)], sort_keys=True, default=str)

    def send_scoped(self, request: Mapping[str, Any], scope: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Send and return the scope extended with the answer (body, headers, status)."""
        response = self.send(request, scope, **kwargs)
        return {**scope, **response_scope(response), "response": response}

    # The vendor's answers
    @classmethod
    def classify_response(cls, response: requests.Response, path: str) -> ApiError | None:
        hook = cls.hook("classify_response")
        if hook is not None:
            return hook(cls, response, path)
        errors = cls.spec.get("errors") or {}
        status = response.status_code
        rules = errors.get("rules") or []
        if not rules and 200 <= status < 400:
            return None
        body = response_json(response)
        scope = {"status": status, "headers": CaseInsensitive(response.headers), "body": body, "const": cls.spec.get("constants") or {}}
        generic_message, generic_code = generic_error_message(body)
        scope["generic"] = {"message": generic_message, "code": generic_code}  # the common envelopes' reading, as a fallback
        message = text(render(errors["message"], scope)) if errors.get("message") else generic_message
        code = text(render(errors["code"], scope)) if errors.get("code") else generic_code
        for rule in rules:
            statuses = rule.get("status")
            if statuses is not None and status not in (statuses if isinstance(statuses, list) else [statuses]):
                continue
            if statuses is None and rule.get("when") is None:
                continue
            if not holds(rule.get("when"), scope):
                continue
            return cls._rule_error(rule, response, path, scope, message, code)
        if 200 <= status < 400:
            return None
        return classify_status(response, path, message=message, code=code)

    @classmethod
    def _rule_error(cls, rule: Mapping[str, Any], response: requests.Response, path: str, scope: Mapping[str, Any], message: str, code: str) -> ApiError | None:
        kind = rule["error"]
        if kind == "ok":
            return None
        message = text(render(rule["message"], scope)) if rule.get("message") else message
        code = text(render(rule["code"], scope)) if rule.get("code") else code
        if kind == "default":
            return (
                classify_status(response, path, message=message, code=code) if response.status_code >= 400 else ApiBadRequest(message or "Refused", path=path)
            )
        text_ = message[:500] or f"HTTP {response.status_code}"
        status = response.status_code
        if kind in ("rate_limited", "quota_exhausted"):
            if rule.get("retry_after_header"):
                wait = parse_retry_after(response.headers.get(rule["retry_after_header"]))
            elif rule.get("retry_after"):
                raw = render(rule["retry_after"], scope)
                wait = float(raw) if isinstance(raw, int | float) else parse_retry_after(text(raw))
            else:
                wait = rate_limit_wait(response.headers)
            if kind == "quota_exhausted":
                return ApiQuotaExhausted(text_, retry_after=wait or 60.0, status=status, vendor_code=code, path=path)
            return ApiRateLimited(text_, retry_after=wait or 1.0, status=status, vendor_code=code, path=path)
        return ERROR_CLASSES[kind](text_, status=status, vendor_code=code, path=path)

    # Connection
    def test_connection(self) -> ConnectionTest:
        hook = self.hook("test_connection")
        if hook is not None:
            return hook(self)
        spec = self.spec.get("test_connection")
        if not spec:
            raise NotImplementedError(f"{self.manifest.name} declares no connection test")
        scope = self.send_scoped(spec["request"], self.run_steps(spec.get("steps"), self.scope()))
        scopes = render(spec.get("scopes"), scope) if "scopes" in spec else []
        return ConnectionTest(
            ok=holds(spec.get("ok"), scope),
            identity=text(render(spec.get("identity", ""), scope)),
            scopes=[str(s) for s in scopes] if isinstance(scopes, list) else [],
            detail=dict(render(spec.get("detail") or {}, scope)),
            account_id=text(render(spec.get("account_id", ""), scope)),
        )

    def post_authorize(self, token: Mapping[str, Any]) -> dict[str, Any]:
        hook = self.hook("post_authorize")
        return hook(self, token) if hook is not None else {}
