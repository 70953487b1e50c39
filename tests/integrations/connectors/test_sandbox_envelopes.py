"""The sandbox never answers like Flask: unknown routes, wrong methods and crashes come back in each vendor's own error envelope."""

from __future__ import annotations

import pytest
import requests
from werkzeug.exceptions import MethodNotAllowed, NotFound

from sandbox.server import ERROR_RENDERERS, create_app, discover_vendor_modules

VENDORS = sorted(module.VENDOR for module in discover_vendor_modules())
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def shape(body) -> set[str]:
    """The keys of an error body: an object's, its first element's when the vendor answers a list (Salesforce), or a
    marker when it answers a bare JSON string (Brandfolder's published spec types every error that way)."""
    if isinstance(body, str):
        return {"<json string>"}
    return set(body[0] if isinstance(body, list) else body)


def envelope_keys(vendor: str, status: int) -> set[str]:
    """The top-level keys of the vendor's own error body (what its renderer answers for a planned error)."""
    with create_app().test_request_context(f"/{vendor}/"):
        return shape(ERROR_RENDERERS[vendor](status, "planned").get_json())


def is_json(response) -> bool:
    kind = response.headers.get("Content-Type", "").split(";")[0]
    return kind == "application/json" or kind.endswith("+json")


def wrong_method_target(vendor: str) -> tuple[str, str] | None:
    """A static path of the vendor's stand-in and a method none of its routes accepts there."""
    app = create_app()
    adapter = app.url_map.bind("sandbox.test")
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(f"/{vendor}/") or "/_sandbox" in rule.rule:
            continue
        try:
            path = adapter.build(rule.endpoint, dict.fromkeys(rule.arguments, "x1"), method=next(iter(rule.methods - {"HEAD", "OPTIONS"})))
        except Exception:  # noqa: BLE001 - a typed converter that refuses "x1": try the next route
            continue
        for method in METHODS:
            try:
                adapter.match(path, method=method)
            except MethodNotAllowed:
                return path, method
            except NotFound:
                break
    return None


def test_every_vendor_has_an_error_renderer():
    create_app()
    assert set(VENDORS) <= set(ERROR_RENDERERS)


@pytest.mark.parametrize("vendor", VENDORS)
@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
def test_unknown_paths_answer_in_the_vendors_envelope(sandbox, vendor, method):
    response = requests.request(method, f"{sandbox}/{vendor}/no/such/route/v9", timeout=10)
    assert response.status_code == 404
    assert is_json(response), response.text[:200]
    assert "<html" not in response.text.lower() and "<!doctype" not in response.text.lower()
    body = response.json()
    if vendor == "slack":
        assert body == {"ok": False, "error": "unknown_method", "req_method": "v9"}
    else:
        assert shape(body) == envelope_keys(vendor, 404)


@pytest.mark.parametrize("vendor", VENDORS)
def test_wrong_methods_answer_in_the_vendors_envelope(sandbox, vendor):
    target = wrong_method_target(vendor)
    if target is None:
        assert vendor == "slack"  # every Slack method takes GET and POST at /api/<method>
        return
    path, method = target
    response = requests.request(method, f"{sandbox}{path}", timeout=10)
    assert response.status_code in (404, 405), (path, method, response.status_code)
    assert is_json(response) and "<html" not in response.text.lower()
    if response.status_code == 405:
        assert shape(response.json()) == envelope_keys(vendor, 405) and response.headers.get("Allow")


def test_a_stand_in_crash_is_a_vendor_500_not_an_html_page(sandbox):
    app = create_app()

    @app.get("/jira/_sandbox/crash")
    def crash():
        raise KeyError("name")

    response = app.test_client().get("/jira/_sandbox/crash")
    assert response.status_code == 500 and response.get_json() == {"errorMessages": ["Internal server error."], "errors": {}}


def test_unknown_top_level_paths_are_json_too(sandbox):
    response = requests.get(f"{sandbox}/nope", timeout=10)
    assert response.status_code == 404 and response.json() == {"error": {"status": 404, "message": "No resource at /nope."}}
