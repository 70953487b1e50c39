"""A small vendor for the declarative compiler's tests, served over real HTTP: every auth kind, paging style and error signal."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask, jsonify, request
from werkzeug.serving import make_server

ITEMS = [{"id": f"it{n}", "name": f"Item {n}", "updated_at": f"2024-05-0{n}T10:00:00Z", "deleted": n == 4} for n in range(1, 6)]
API_KEY, TOKEN, CLIENT_ID, CLIENT_SECRET = "k-123", "t-456", "acme-client", "acme-secret"


def build_app(state: dict[str, Any]) -> Flask:
    app = Flask("declarative_vendor")

    def authorized() -> bool:
        auth = request.headers.get("Authorization", "")
        issued = {f"Bearer {token}" for token in state["tokens"] if token not in state["expired"]}
        return auth in {f"Key {API_KEY}", f"Bearer {TOKEN}", "Basic YWNtZTpwdw=="} | issued or request.args.get("api_key") == API_KEY

    @app.before_request
    def check():
        state["seen"].append({"path": request.path, "args": list(request.args.items(multi=True)), "auth": request.headers.get("Authorization", "")})
        if request.path != "/oauth/token" and not authorized():
            return jsonify({"fault": {"kind": "auth", "reason": "who are you?"}}), 401
        return None

    @app.post("/oauth/token")
    def token():
        if request.form.get("client_id") != CLIENT_ID or request.form.get("client_secret") != CLIENT_SECRET:
            return jsonify({"error": "invalid_client"}), 401
        state["tokens"].append(f"cc-{len(state['tokens']) + 1}")
        return jsonify({"access_token": state["tokens"][-1], "expires_in": 3600})

    @app.get("/me")
    def me():
        return jsonify({"id": "acct-1", "name": "Acme Corp", "plan": "pro"})

    @app.get("/pages")
    def pages():
        number, size = int(request.args["page"]), int(request.args["limit"])
        return jsonify(ITEMS[(number - 1) * size : number * size])

    @app.get("/offsets")
    def offsets():
        offset, size = int(request.args["offset"]), int(request.args["limit"])
        return jsonify({"data": ITEMS[offset : offset + size], "more": offset + size < len(ITEMS)})

    @app.get("/cursors")
    def cursors():
        start = int(request.args.get("after") or 0)
        end = start + 2
        return jsonify({"data": ITEMS[start:end], "next": str(end) if end < len(ITEMS) else None})

    @app.get("/links")
    def links():
        start = int(request.args.get("from") or 0)
        following = f"/links?from={start + 2}" if start + 2 < len(ITEMS) else None
        return jsonify({"items": ITEMS[start : start + 2], "next_url": following})

    @app.get("/headers")
    def headers():
        start = int(request.args.get("from") or 0)
        response = jsonify(ITEMS[start : start + 3])
        if start + 3 < len(ITEMS):
            response.headers["Link"] = f'<{request.host_url}headers?from={start + 3}>; rel="next"'
        return response

    @app.get("/changes")
    def changes():
        since = request.args.get("since", "")
        return jsonify({"changes": [i for i in ITEMS if i["updated_at"] >= since]})

    @app.get("/sync")
    def sync():
        # A sync token: the first call lists everything, later calls what changed since the token they send back.
        token = request.args.get("token")
        changed = ITEMS if not token else [i for i in ITEMS if i["updated_at"] > ITEMS[int(token.removeprefix("s")) - 1]["updated_at"]]
        return jsonify({"data": changed, "sync": f"s{len(ITEMS)}"})

    @app.get("/tombstones")
    def tombstones():
        return jsonify({"deleted": [{"gid": "gone-1", "at": request.args.get("since")}]})

    @app.get("/session")
    def session():
        # HTTP 200 with an "expired" body: the token is spent, the answer says so only in the body.
        current = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if current not in state["expired"] and len(state["tokens"]) == 1:
            state["expired"].add(current)
        if current in state["expired"]:
            return jsonify({"ok": False, "error": {"code": "token_expired"}})
        return jsonify({"ok": True, "who": "service"})

    @app.get("/limited")
    def limited():
        if request.args.get("kind") == "quota":
            return jsonify({"fault": {"kind": "quota", "reason": "daily quota spent"}}), 429
        return jsonify({"fault": {"kind": "slow_down", "reason": "too fast"}}), 429, {"Acme-Retry-In": "7"}

    @app.get("/tickets")
    def tickets():
        query = request.args.get("q", "")
        return jsonify({"tickets": [t for t in state["tickets"].values() if query in t["title"]]})

    @app.post("/tickets")
    def create():
        body = request.get_json()
        number = len(state["tickets"]) + 1
        ticket = {"id": f"T-{number}", "title": body["title"], "marker": body.get("marker"), "state": "open", "link": f"https://acme.test/t/{number}"}
        if body.get("assignee"):
            ticket["assignee"] = body["assignee"]
        key = request.headers.get("Acme-Idempotency-Key")
        if key and key in state["keys"]:
            return jsonify(state["tickets"][state["keys"][key]]), 200
        if key:
            state["keys"][key] = ticket["id"]
        state["tickets"][ticket["id"]] = ticket
        if state.pop("fail_after_create", False):
            return jsonify({"fault": {"kind": "gateway", "reason": "lost"}}), 502
        return jsonify(ticket), 201

    @app.post("/tickets/batch")
    def batch():
        created = []
        for item in request.get_json()["inputs"]:
            number = len(state["tickets"]) + 1
            ticket = {"id": f"T-{number}", "title": item["title"], "marker": item.get("marker"), "state": "open", "link": f"https://acme.test/t/{number}"}
            state["tickets"][ticket["id"]] = ticket
            created.append(ticket)
        return jsonify({"results": created}), 201

    @app.get("/users")
    def users():
        email = request.args.get("email", "")
        return jsonify({"users": [{"id": "u-7", "email": email}] if email.endswith("@acme.test") else []})

    @app.get("/tickets/<ticket_id>")
    def ticket(ticket_id: str):
        found = state["tickets"].get(ticket_id)
        return (jsonify(found), 200) if found else (jsonify({"fault": {"kind": "missing", "reason": "no such ticket"}}), 404)

    @app.post("/tickets/<ticket_id>/withdraw")
    def withdraw(ticket_id: str):
        state["tickets"][ticket_id]["state"] = "withdrawn"
        return jsonify(state["tickets"][ticket_id])

    @app.post("/webhooks")
    def subscribe():
        # The vendor chooses the signing secret and says it once, in a header of its answer (Asana's X-Hook-Secret).
        state["subscriptions"].append(request.get_json())
        return jsonify({"data": {"gid": "wh-1", "target": request.get_json()["target"]}}), 201, {"X-Hook-Secret": "vendor-made-secret"}

    @app.get("/projects")
    def projects():
        names = [("p1", "Apollo"), ("p2", "Gemini"), ("p3", "Mercury")]
        query = request.args.get("name_like", "").lower()
        return jsonify({"projects": [{"gid": gid, "label": label} for gid, label in names if query in label.lower()]})

    return app


@contextmanager
def vendor() -> Iterator[tuple[str, dict[str, Any]]]:
    """(base URL, state) of a fresh vendor on a free local port."""
    state: dict[str, Any] = {"tokens": [], "expired": set(), "tickets": {}, "keys": {}, "seen": [], "subscriptions": []}
    server = make_server("127.0.0.1", 0, build_app(state), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", state
    finally:
        server.shutdown()
