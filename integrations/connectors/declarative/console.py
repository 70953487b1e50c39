"""try_request: the builder's request console. One request of a spec, live, with the raw answer and the records it yields."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import requests

from integrations.connectors.base import BaseConnector
from integrations.connectors.declarative.compiler import compile_spec
from integrations.connectors.declarative.runtime import DeclarativeConnector, select
from integrations.errors import ApiError
from integrations.http import HttpClient, response_json

MAX_BODY_CHARS = 64 * 1024
MAX_RECORDS = 50
HIDDEN_HEADERS = frozenset({"set-cookie", "authorization", "www-authenticate", "proxy-authenticate"})


def _console_client(base_url: str) -> HttpClient:
    from integrations.ssrf import url_guard  # the console reaches what a connection reaches: through the SSRF guard

    # Every answer comes back as it is (the console shows a 404 instead of raising it); nothing is retried.
    return HttpClient(base_url, url_guard=url_guard, max_retries=0, timeout=(5.0, 15.0), classify=lambda response, path: None)


def _body(response: requests.Response) -> Any:
    body = response_json(response)
    if body is not None:
        return body
    text = response.text
    return text[:MAX_BODY_CHARS] + ("…" if len(text) > MAX_BODY_CHARS else "")


def try_request(
    connector_class_or_doc: type[BaseConnector] | Mapping[str, Any],
    config: Mapping[str, Any],
    credentials: Mapping[str, Any],
    request_name: str,
    params: Mapping[str, Any] | None = None,
    *,
    client: HttpClient | None = None,
    base_url: str = "",
) -> dict[str, Any]:
    """Send `request_name` ("test_connection", "entity:<key>", "option:<name>" or a name in `requests`) and describe the answer.

    `params` are extra template names (input, page, cursor…). Returns status, headers, body (JSON or text, capped), the
    records the spec would produce, and how the spec classifies the answer ("" = success). Specs tried here never run hooks.
    """
    if isinstance(connector_class_or_doc, Mapping):
        cls: type[BaseConnector] = compile_spec(connector_class_or_doc, allow_hooks=False)
    else:
        cls = connector_class_or_doc
    if not issubclass(cls, DeclarativeConnector):
        raise TypeError("try_request takes a declarative spec or its compiled class")
    base = base_url or str(config.get("base_url") or "") or cls.manifest.default_base_url
    client = client or _console_client(base)
    connector = cls(client=client, config=config, credentials=credentials)
    captured: list[requests.Response] = []
    original = client.request

    def capture(*args: Any, **kwargs: Any) -> requests.Response:
        response = original(*args, **kwargs)
        captured.append(response)
        return response

    client.request = capture  # type: ignore[method-assign]
    outcome: dict[str, Any] = {"request": request_name, "records": [], "record_count": 0, "next_page": None, "error": "", "classified_error": ""}
    spec = connector.spec
    try:
        if request_name == "test_connection":
            connector.test_connection()
        elif request_name.startswith("entity:"):
            page = connector.read(request_name.removeprefix("entity:"), page=(params or {}).get("page"), cursor=(params or {}).get("cursor"))
            outcome.update(records=page.records[:MAX_RECORDS], record_count=len(page.records), next_page=page.next_page)
        elif request_name.startswith("option:"):
            choices = connector.choices(request_name.removeprefix("option:"))  # type: ignore[attr-defined]
            outcome.update(records=[{"value": v, "label": label} for v, label in choices[:MAX_RECORDS]], record_count=len(choices))
        elif request_name in (spec.get("requests") or {}):
            scope = connector.scope(**dict(params or {}))
            answer = connector.send_scoped(spec["requests"][request_name], scope)
            records = select((params or {}).get("records"), answer["body"]) if (params or {}).get("records") else []
            outcome.update(records=records[:MAX_RECORDS], record_count=len(records))
        else:
            raise KeyError(f"no request named '{request_name}' (try test_connection, entity:<key>, option:<name> or a name in `requests`)")
    except (ApiError, KeyError, ValueError, TypeError, NotImplementedError) as exc:
        outcome["error"] = str(exc)
    finally:
        client.request = original  # type: ignore[method-assign]
    if captured:
        response = captured[-1]
        classified = cls.classify_response(response, urlsplit(response.url).path)
        url = response.url
        if connector._query_auth is not None:  # an API key sent in the query string is never shown back
            url = url.replace(f"{connector._query_auth[0]}={connector._query_auth[1]}", f"{connector._query_auth[0]}=***") if connector._query_auth[1] else url
        outcome.update(
            url=url,
            status=response.status_code,
            headers={k: v for k, v in response.headers.items() if k.lower() not in HIDDEN_HEADERS},
            body=_body(response),
            classified_error=str(classified) if classified else "",
        )
    return outcome
