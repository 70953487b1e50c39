"""The vendor sandbox: one Flask process on loopback speaking each vendor's wire format under /<vendor>/."""

from __future__ import annotations

import importlib
import json
import logging
import pkgutil
import threading
from collections.abc import Callable

from flask import Blueprint, Flask, Response, jsonify, render_template_string, request
from werkzeug.exceptions import HTTPException
from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler

from sandbox import vendors as vendors_package
from sandbox.oauth import issue_static_token
from sandbox.state import STORE, Faults

logger = logging.getLogger(__name__)
SPEC_CHECKED = (
    "jira",
    "pagerduty",
    "twilio",
    "statuspage",
    "okta",
    "slack",
    "google_calendar",
    "microsoft365",
    "google_sheets",
)  # vendors with a spec in sandbox/specs
request_logger = logging.getLogger("sandbox.requests")


# vendor → its error renderer (status, message) → Response: every answer the stand-in did not plan is still in the vendor's envelope.
ERROR_RENDERERS: dict[str, Callable[[int, str], Response]] = {}


def install_faults(bp: Blueprint, vendor: str, *, rate_limited: Callable[[int], Response], error: Callable[[int, str], Response]) -> None:
    """Apply the vendor's fault knobs before each of its requests (OAuth endpoints included); its renderer answers unknown routes."""
    from sandbox.faults import apply_faults

    ERROR_RENDERERS.setdefault(vendor, error)

    @bp.before_request
    def _faults():
        return apply_faults(vendor, rate_limited=rate_limited, error=error)

    @bp.after_request
    def _log(response: Response):
        STORE.log_request(vendor, request.method, request.path, response.status_code)
        return response


INSPECTOR = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Bastion vendor sandbox</title>
<style>body{font-family:system-ui,sans-serif;margin:24px;color:#1b2330}table{border-collapse:collapse;width:100%;margin-bottom:24px}
td,th{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left;font-size:14px}h2{margin-top:28px}code{background:#f1f2f6;padding:1px 4px}</style></head>
<body><h1>Bastion vendor sandbox</h1>
<p>Stand-ins for: {% for v in vendors %}<code>/{{ v }}</code> {% endfor %}</p>
<h2>Created by Bastion ({{ created|length }})</h2>
<table><thead><tr><th>Vendor</th><th>Kind</th><th>Id</th><th>Summary</th></tr></thead><tbody>
{% for c in created %}<tr><td>{{ c.vendor }}</td><td>{{ c.kind }}</td><td>{% if c.url %}<a href="{{ c.url }}">{{ c.id }}</a>{% else %}{{ c.id }}{% endif %}</td><td>{{ c.summary }}</td></tr>{% endfor %}
</tbody></table>
<h2>Fault knobs</h2><table><thead><tr><th>Vendor</th><th>Knobs</th></tr></thead><tbody>
{% for v, f in faults.items() %}<tr><td>{{ v }}</td><td><code>{{ f }}</code></td></tr>{% endfor %}</tbody></table>
<p>Set knobs with <code>PUT /_control/faults/&lt;vendor&gt;</code> (JSON), reset with <code>POST /_control/reset</code>.</p>
<h2>Recent requests</h2><table><tbody>{% for r in log %}<tr><td>{{ r.vendor }}</td><td>{{ r.method }}</td><td>{{ r.path }}</td><td>{{ r.status }}</td></tr>{% endfor %}</tbody></table>
</body></html>"""


def discover_vendor_modules() -> list:
    modules = []
    for info in pkgutil.iter_modules(vendors_package.__path__):
        if info.name.startswith("_"):
            continue
        modules.append(importlib.import_module(f"{vendors_package.__name__}.{info.name}"))
    from sandbox.declared import declared_vendors  # vendors served from their OpenAPI document + a state description

    return modules + declared_vendors()


def create_app() -> Flask:
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = 20 * 1024 * 1024
    vendor_names: list[str] = []
    for module in discover_vendor_modules():
        vendor = module.VENDOR
        for bp in module.blueprints():
            app.register_blueprint(bp, url_prefix=f"/{vendor}")
        seed = getattr(module, "seed", None)
        if seed:
            seed()
        vendor_names.append(vendor)
    app.config["VENDORS"] = sorted(vendor_names)
    seeders = [getattr(m, "seed", None) for m in discover_vendor_modules()]

    unknown_route_renderers = {m.VENDOR: m.unknown_route for m in discover_vendor_modules() if hasattr(m, "unknown_route")}

    def vendor_error(status: int, message: str) -> Response:
        """An error the stand-in did not plan (no such route, wrong method, a crash) in the vendor's envelope, never Flask's HTML."""
        vendor = request.path.strip("/").split("/", 1)[0]
        if status in (404, 405) and vendor in unknown_route_renderers:
            response = unknown_route_renderers[vendor](status, request.method, request.path)
        elif vendor in ERROR_RENDERERS:
            response = ERROR_RENDERERS[vendor](status, message)
        else:
            response = jsonify({"error": {"status": status, "message": message}})
            response.status_code = status
        return response

    @app.after_request
    def spec_check(response: Response) -> Response:
        """Check what a stand-in accepted and answered against its vendor's published spec; record any mismatch."""
        vendor = request.path.strip("/").split("/", 1)[0]
        if vendor in SPEC_CHECKED:
            _record_spec_problems(vendor, response)
        return response

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        status = error.code or 500
        if status == 404:
            message = f"No resource at {request.path}."
        elif status == 405:
            message = f"{request.method} is not allowed on {request.path}."
        else:
            message = error.description or error.name
        response = vendor_error(status, message)
        if status == 405:
            allowed = dict(error.get_headers()).get("Allow")
            if allowed:
                response.headers["Allow"] = allowed
        return response

    @app.errorhandler(Exception)
    def crash(error: Exception) -> Response:
        logger.exception("sandbox.unhandled_error", extra={"path": request.path})
        return vendor_error(500, "Internal server error.")

    @app.get("/")
    def inspector():
        with STORE.lock:
            created = list(reversed(STORE.created[-500:]))
            faults = {v: f.as_dict() for v, f in STORE.faults.items()}
            log = list(reversed(STORE.request_log[-50:]))
        return render_template_string(INSPECTOR, vendors=app.config["VENDORS"], created=created, faults=faults, log=log)

    @app.get("/_control/health")
    def health():
        return jsonify({"ok": True, "vendors": app.config["VENDORS"]})

    @app.post("/_control/reset")
    def reset():
        STORE.reset()
        for seeder in seeders:
            if seeder:
                seeder()
        return jsonify({"ok": True})

    @app.route("/_control/faults/<vendor>", methods=["GET", "PUT"])
    def faults(vendor: str):
        if request.method == "PUT":
            knobs = request.get_json(force=True) or {}
            unknown = set(knobs) - set(Faults().as_dict())
            if unknown:
                return jsonify({"error": f"unknown knobs: {sorted(unknown)}"}), 400
            with STORE.lock:
                current = STORE.faults_for(vendor)
                for key, value in knobs.items():
                    setattr(current, key, value)
        return jsonify(STORE.faults_for(vendor).as_dict())

    @app.post("/_control/tokens")
    def tokens():
        body = request.get_json(force=True) or {}
        token = issue_static_token(
            body["vendor"], body.get("token"), scopes=body.get("scopes"), ttl=body.get("ttl"), subject=body.get("subject", "sandbox-admin")
        )
        return jsonify({"token": token})

    @app.get("/_control/created")
    def created():
        vendor = request.args.get("vendor")
        kind = request.args.get("kind")
        return jsonify([c.__dict__ for c in STORE.created_by(vendor, kind)])

    @app.get("/_control/spec-mismatches")
    def spec_mismatches():
        with STORE.lock:
            return jsonify(list(STORE.spec_mismatches))

    @app.get("/_control/requests")
    def requests_log():
        vendor = request.args.get("vendor")
        with STORE.lock:
            return jsonify([r for r in STORE.request_log if vendor is None or r["vendor"] == vendor])

    return app


def _record_spec_problems(vendor: str, response: Response) -> None:
    from sandbox.spec_check import check_exchange

    content_type = response.headers.get("Content-Type", "")
    answer = None
    if content_type.startswith("application/json") and not response.direct_passthrough:
        try:
            answer = json.loads(response.get_data() or b"null")
        except ValueError:
            answer = None
    body = request.get_json(silent=True, cache=True) if request.mimetype == "application/json" else None
    form = request.form.to_dict() if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data") else {}
    try:
        problems = check_exchange(
            vendor,
            method=request.method,
            path=request.path,
            query=request.args.to_dict(),
            headers=dict(request.headers),
            form=form,
            body=body,
            status=response.status_code,
            content_type=content_type,
            answer=answer,
        )
    except Exception:  # noqa: BLE001 - a checker bug is logged and recorded, never turned into a different answer
        logger.exception("sandbox.spec_check_failed", extra={"path": request.path})
        problems = ["the spec check itself failed (see the sandbox log)"]
    if problems:
        with STORE.lock:
            STORE.spec_mismatches.append(
                {"vendor": vendor, "method": request.method, "path": request.path, "status": response.status_code, "problems": problems}
            )


def _log_to_logger(type: str, message: str, *args: object) -> None:
    request_logger.log(logging.getLevelName(type.upper()), message.rstrip(), *args)


class _LoggingRequestHandler(WSGIRequestHandler):
    """Request lines go to `sandbox.requests`: werkzeug's logger would add a handler on the current stderr, which pytest closes."""

    def log(self, type: str, message: str, *args: object) -> None:
        _log_to_logger(type, f"{self.address_string().replace('%', '%%')} {message}", *args)


class _LoggingWSGIServer(ThreadedWSGIServer):
    """The in-process server's own errors ("Error on request") take the same route."""

    def log(self, type: str, message: str, *args: object) -> None:
        _log_to_logger(type, message, *args)


class SandboxServer:
    """Run the sandbox in a background thread (tests) on a loopback port; port 0 picks a free one."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.app = create_app()
        self._server = _LoggingWSGIServer(host, port, self.app, handler=_LoggingRequestHandler)
        self.host = host
        self.port = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, name="sandbox", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> SandboxServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
