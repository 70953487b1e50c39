"""The declared sandbox engine: Asana served from its published OpenAPI document plus sandbox/declared/asana.yaml, over real HTTP."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
import yaml

from sandbox.declared import DESCRIPTIONS_DIR
from sandbox.declared.description import DescriptionInvalid, parse
from sandbox.declared.engine import DeclaredVendor
from sandbox.declared.infer import infer
from sandbox.spec_check import SPECS_DIR
from sandbox.state import STORE
from tests.conftest import wait_for

PAT = "sandbox-asana-pat"
AUTH = {"Authorization": f"Bearer {PAT}"}
PROJECT = "1300000000000001"
WORKSPACE = "1100000000000001"
ERRORS_HELP = "For more information on API status codes and how to handle them, read the docs on errors: https://developers.asana.com/docs/errors"


class HookTarget:
    """A webhook target on loopback: echoes the X-Hook-Secret handshake (unless told not to) and records deliveries."""

    def __init__(self, *, echo: bool = True) -> None:
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.requests.append({"path": self.path, "headers": dict(self.headers.items()), "body": body})
                self.send_response(200)
                if echo and self.headers.get("X-Hook-Secret"):
                    self.send_header("X-Hook-Secret", self.headers["X-Hook-Secret"])
                self.end_headers()

            def log_message(self, *args):
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/asana"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def deliveries(self) -> list[dict]:
        return [r for r in self.requests if "X-Hook-Signature" in r["headers"]]


@pytest.fixture
def target():
    server = HookTarget()
    yield server
    server.server.shutdown()


def api(sandbox: str, method: str, path: str, **kwargs) -> requests.Response:
    kwargs.setdefault("headers", AUTH)
    return requests.request(method, f"{sandbox}/asana/api/1.0{path}", timeout=10, **kwargs)


def mismatches(sandbox: str) -> list[dict]:
    return requests.get(f"{sandbox}/_control/spec-mismatches", timeout=5).json()


def test_created_tasks_read_back_with_references_resolved_and_are_listed(sandbox):
    me = api(sandbox, "GET", "/users/me").json()["data"]
    assert me["gid"] == "1200000000000001" and me["email"] == "ada.admin@acme.example"
    created = api(sandbox, "POST", "/tasks", json={"data": {"name": "Rotate leaked key", "projects": [PROJECT], "assignee": "me", "notes": "from the run"}})
    assert created.status_code == 201
    task = created.json()["data"]
    assert task["assignee"] == {"gid": me["gid"], "resource_type": "user", "name": "Ada Admin"}
    assert task["workspace"]["gid"] == WORKSPACE  # inherited from the project
    assert task["completed"] is False and task["completed_at"] is None and task["permalink_url"].endswith(task["gid"])
    assert api(sandbox, "GET", f"/tasks/{task['gid']}").json()["data"] == task
    first = api(sandbox, "GET", "/tasks", params={"project": PROJECT, "limit": 100}).json()
    listed = api(sandbox, "GET", "/tasks", params={"project": PROJECT, "limit": 100, "offset": first["next_page"]["offset"]}).json()["data"]
    assert listed[-1] == {"gid": task["gid"], "resource_type": "task", "name": "Rotate leaked key", "resource_subtype": "default_task"}  # compact
    done = api(sandbox, "PUT", f"/tasks/{task['gid']}", json={"data": {"completed": True}}).json()["data"]
    assert done["completed"] is True and done["completed_at"] and done["modified_at"] >= task["modified_at"]
    assert api(sandbox, "DELETE", f"/tasks/{task['gid']}").json() == {"data": {}}
    gone = api(sandbox, "GET", f"/tasks/{task['gid']}")
    assert gone.status_code == 404 and gone.json() == {"errors": [{"message": f"Unknown object: {task['gid']}", "help": ERRORS_HELP}]}
    kinds = requests.get(f"{sandbox}/_control/created", params={"vendor": "asana"}, timeout=5).json()
    assert [(c["kind"], c["summary"]) for c in kinds] == [("task", "Rotate leaked key")]
    assert mismatches(sandbox) == []


def test_lists_page_with_opaque_offsets_and_filter_by_modification_time(sandbox):
    seen, offset, pages = [], None, 0
    while True:
        params = {"project": PROJECT, "limit": 20, "opt_fields": "modified_at,completed"}
        if offset:
            params["offset"] = offset
        body = api(sandbox, "GET", "/tasks", params=params).json()
        pages += 1
        seen += body["data"]
        if body["next_page"] is None:
            break
        offset = body["next_page"]["offset"]
        assert body["next_page"]["path"].startswith("/tasks?") and body["next_page"]["uri"].startswith(f"{sandbox}/asana/api/1.0/tasks?")
    assert pages == 7 and len(seen) == 130 and len({t["gid"] for t in seen}) == 130
    assert set(seen[0]) == {"gid", "resource_type", "name", "resource_subtype", "modified_at", "completed"}
    # Asana's offsets are its own: one it never gave is refused in its envelope.
    refused = api(sandbox, "GET", "/tasks", params={"project": PROJECT, "offset": "made-up"})
    assert refused.status_code == 400 and "pagination token is invalid" in refused.json()["errors"][0]["message"]
    # Incremental: only what changed since the cursor; a change made in Asana's own UI moves modified_at.
    cursor = api(sandbox, "GET", "/tasks", params={"project": PROJECT, "limit": 100, "opt_fields": "modified_at"}).json()["data"]
    newest = max(t["modified_at"] for t in cursor)
    unchanged = api(sandbox, "GET", "/tasks", params={"project": PROJECT, "modified_since": newest}).json()["data"]
    assert [t["gid"] for t in unchanged] == [t["gid"] for t in cursor if t["modified_at"] >= newest] == ["1400000000000001"]
    requests.patch(f"{sandbox}/asana/_sandbox/records/tasks/1400000000000030", json={"name": "Renamed in Asana"}, timeout=5).raise_for_status()
    changed = api(sandbox, "GET", "/tasks", params={"project": PROJECT, "modified_since": newest, "opt_fields": "modified_at"}).json()["data"]
    assert [t["gid"] for t in changed] == ["1400000000000001", "1400000000000030"] and changed[1]["modified_at"] > newest
    assert mismatches(sandbox) == []


def test_requests_and_answers_outside_the_spec_are_refused_or_recorded(sandbox):
    bad_body = api(sandbox, "POST", "/tasks", json={"data": {"name": 5, "workspace": WORKSPACE}})
    assert bad_body.status_code == 400 and bad_body.json()["errors"][0]["message"] == "data/name: 5 is not of type 'string'"
    too_many = api(sandbox, "GET", "/tasks", params={"project": PROJECT, "limit": 500})
    assert too_many.status_code == 400 and "greater than the maximum of 100" in too_many.json()["errors"][0]["message"]
    recorded = mismatches(sandbox)
    assert [(m["method"], m["status"]) for m in recorded] == [("POST", 400), ("GET", 400)]
    assert recorded[0]["problems"] == ["request refused: data/name: 5 is not of type 'string'"]
    # An answer the spec does not allow (a record changed behind the engine's back into a wrong type) is recorded too.
    requests.patch(f"{sandbox}/asana/_sandbox/records/tasks/1400000000000001", json={"completed": "yes"}, timeout=5).raise_for_status()
    assert api(sandbox, "GET", "/tasks/1400000000000001").status_code == 200
    answer = mismatches(sandbox)[-1]
    assert answer["path"] == "/asana/api/1.0/tasks/1400000000000001" and answer["problems"] == ["answer 200: data/completed: 'yes' is not of type 'boolean'"]
    # Vendor rules beyond the spec: a task list needs a filter, a task needs a home; unknown routes and missing tokens.
    assert api(sandbox, "GET", "/tasks").json()["errors"][0]["message"].startswith("Must specify exactly one of project")
    homeless = api(sandbox, "POST", "/tasks", json={"data": {"name": "Nowhere"}})
    assert homeless.status_code == 400 and homeless.json()["errors"][0]["message"] == "You should specify one of workspace, projects, parent"
    assert api(sandbox, "POST", "/tasks", json={"data": {"name": "x", "assignee": "999", "workspace": WORKSPACE}}).status_code == 400
    by_email = api(sandbox, "POST", "/tasks", json={"data": {"name": "x", "assignee": "amara.nwosu@acme.example", "workspace": WORKSPACE}})
    assert by_email.json()["data"]["assignee"]["name"] == "Amara Nwosu"  # Asana takes a user's e-mail where it takes a user
    assert api(sandbox, "GET", "/no-such-thing").status_code == 404
    assert api(sandbox, "PATCH", "/tasks/1400000000000002", json={"data": {}}).status_code == 405
    unauthorized = api(sandbox, "GET", "/users/me", headers={"Authorization": "Bearer wrong"})
    assert unauthorized.status_code == 401 and unauthorized.json()["errors"][0]["message"] == "Not Authorized"


def test_webhooks_handshake_then_signed_deliveries_and_forgeries_fail_verification(sandbox, target):
    created = api(sandbox, "POST", "/webhooks", json={"data": {"resource": PROJECT, "target": target.url}})
    assert created.status_code == 201, created.text
    secret = created.headers["X-Hook-Secret"]
    assert target.requests[0]["headers"]["X-Hook-Secret"] == secret and target.requests[0]["body"] == b""
    hook = created.json()["data"]
    assert hook["active"] is True and hook["resource"]["gid"] == PROJECT and hook["target"] == target.url
    # A change to a task bubbles up to its project's webhook, signed with the handshake secret.
    api(sandbox, "PUT", "/tasks/1400000000000003", json={"data": {"completed": True}})
    delivery = wait_for(lambda: target.deliveries(), message="a signed delivery")[0]
    expected = hmac.new(secret.encode(), delivery["body"], hashlib.sha256).hexdigest()
    assert hmac.compare_digest(delivery["headers"]["X-Hook-Signature"], expected)
    events = json.loads(delivery["body"])["events"]
    assert {(e["action"], e["resource"]["gid"], e["change"]["field"]) for e in events} >= {("changed", "1400000000000003", "completed")}
    assert events[0]["parent"] == {"gid": PROJECT, "resource_type": "project"}
    forged = requests.post(f"{sandbox}/asana/_sandbox/webhooks/{hook['gid']}/deliver", json={"events": events, "forge": True}, timeout=10).json()
    assert forged["forged"] is True and forged["status"] == 200
    forgery = target.deliveries()[-1]
    assert forgery["headers"]["X-Hook-Signature"] != hmac.new(secret.encode(), forgery["body"], hashlib.sha256).hexdigest()
    assert [h["gid"] for h in api(sandbox, "GET", "/webhooks", params={"workspace": WORKSPACE}).json()["data"]] == [hook["gid"]]
    assert mismatches(sandbox) == []


def test_a_target_that_does_not_echo_the_secret_gets_no_webhook(sandbox):
    silent = HookTarget(echo=False)
    try:
        refused = api(sandbox, "POST", "/webhooks", json={"data": {"resource": PROJECT, "target": silent.url}})
        assert refused.status_code == 400 and "X-Hook-Secret" in refused.json()["errors"][0]["message"]
        assert len(silent.requests) == 1
        assert api(sandbox, "GET", "/webhooks", params={"workspace": WORKSPACE}).json()["data"] == []
    finally:
        silent.server.shutdown()


def test_the_events_feed_starts_with_412_and_a_sync_token_then_returns_changes_since(sandbox):
    first = api(sandbox, "GET", "/events", params={"resource": PROJECT})
    assert first.status_code == 412 and first.json()["errors"][0]["message"].startswith("Sync token invalid or too old")
    token = first.json()["sync"]
    api(sandbox, "PUT", "/tasks/1400000000000004", json={"data": {"name": "Renamed"}})
    later = api(sandbox, "GET", "/events", params={"resource": PROJECT, "sync": token}).json()
    assert [(e["action"], e["resource"]["gid"], e["change"]["field"]) for e in later["data"]] == [("changed", "1400000000000004", "name")]
    assert later["sync"] != token and later["has_more"] is False
    assert api(sandbox, "GET", "/events", params={"resource": PROJECT, "sync": later["sync"]}).json()["data"] == []
    assert mismatches(sandbox) == []


def test_the_fault_knobs_of_the_hand_written_stand_ins_apply(sandbox):
    def knobs(**values):
        requests.put(f"{sandbox}/_control/faults/asana", json=values, timeout=5).raise_for_status()

    knobs(rate_limit_next=1, retry_after=7)
    limited = api(sandbox, "GET", "/users/me")
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "7"
    assert limited.json()["errors"][0]["message"].startswith("You've made too many requests")
    assert api(sandbox, "GET", "/users/me").status_code == 200
    knobs(error_next=1, error_status=500)
    crashed = api(sandbox, "GET", "/users/me").json()["errors"][0]
    assert crashed["message"] == "injected failure (sandbox fault knob)" and crashed["phrase"]
    knobs(revoked=True)
    assert api(sandbox, "GET", "/users/me").status_code == 401
    knobs(revoked=False, down=True, error_retry_after=30)
    down = api(sandbox, "GET", "/users/me")
    assert down.status_code == 503 and down.headers["Retry-After"] == "30"
    log = requests.get(f"{sandbox}/_control/requests", params={"vendor": "asana"}, timeout=5).json()
    assert [r["status"] for r in log] == [429, 200, 500, 401, 503]


def test_a_description_that_names_what_does_not_exist_is_refused_with_its_place():
    base = {"vendor": "acme", "spec": {"file": "x.json"}, "errors": {"template": {"message": "{message}"}}}
    with pytest.raises(DescriptionInvalid, match=r"collections.tickets.refs.owner names unknown collection 'people'"):
        parse({**base, "collections": {"tickets": {"resource_type": "ticket", "refs": {"owner": "people"}}}, "routes": []})
    with pytest.raises(DescriptionInvalid, match=r"routes\[0\].op must be one of"):
        parse({**base, "collections": {}, "routes": [{"method": "GET", "path": "/x", "op": "explode"}]})
    with pytest.raises(DescriptionInvalid, match=r"paging.style must be one of"):
        parse({**base, "collections": {}, "routes": [], "paging": {"style": "pages-by-carrier-pigeon"}})


@contextmanager
def served(doc: dict):
    """A description served by the engine on its own loopback Flask app (not the session sandbox): its base URL."""
    from flask import Flask
    from werkzeug.serving import make_server

    vendor = DeclaredVendor(parse(doc))
    app = Flask(__name__)
    for blueprint in vendor.blueprints():
        app.register_blueprint(blueprint, url_prefix=f"/{vendor.VENDOR}")
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        vendor.seed()
        yield f"http://127.0.0.1:{server.server_port}/{vendor.VENDOR}{vendor.d.base_path}"
    finally:
        server.shutdown()


def own_mismatches(vendor: str) -> list[dict]:
    with STORE.lock:
        return [m for m in STORE.spec_mismatches if m["vendor"] == vendor]


def test_the_engine_is_generic_a_variant_description_pages_by_cursor_with_uuid_ids():
    """Another state description over the same OpenAPI document: cursor paging in a named field, uuid ids."""
    doc = yaml.safe_load((DESCRIPTIONS_DIR / "asana.yaml").read_text())
    doc.update(vendor="asana_variant", ids={"format": "uuid"}, paging={"style": "cursor", "cursor_param": "offset", "default_limit": 10, "next_field": "next"})
    with served(doc) as base:
        created = requests.post(f"{base}/tasks", json={"data": {"name": "Variant", "workspace": WORKSPACE}}, headers=AUTH, timeout=5).json()["data"]
        assert re.fullmatch(r"[0-9a-f-]{36}", created["gid"])
        gids, cursor = [], None
        while True:
            page = requests.get(f"{base}/tasks", params={"project": PROJECT, **({"offset": cursor} if cursor else {})}, headers=AUTH, timeout=5).json()
            gids += [t["gid"] for t in page["data"]]
            cursor = page["next"]
            if not cursor:
                break
        assert len(gids) == len(set(gids)) == 130
    assert own_mismatches("asana_variant") == []


def test_a_description_inferred_from_the_openapi_document_alone_serves_state():
    """sandbox.declared.infer reads collections, routes, ids, envelopes, paging and errors from the document itself."""
    document = json.loads((SPECS_DIR / "asana.json").read_text())
    doc = infer("asana_inferred", document, spec_file="asana.json", base_path="/api/1.0")
    assert doc["envelope"] == {"request": "data", "answer": "data"} and doc["ids"]["field"] == "gid"
    assert doc["paging"]["style"] == "offset_token" and doc["paging"]["next_field"] == "next_page" and doc["fields"] == {"param": "opt_fields"}
    assert doc["errors"] == {"template": {"errors": [{"message": "{message}"}]}}
    assert doc["collections"]["tasks"]["refs"] == {"projects": ["projects"], "workspace": "workspaces"}
    assert {(r["method"], r["path"], r["op"]) for r in doc["routes"] if r["collection"] == "tasks"} == {
        ("GET", "/tasks", "list"),
        ("POST", "/tasks", "create"),
        ("GET", "/tasks/{task_gid}", "read"),
        ("PUT", "/tasks/{task_gid}", "update"),
        ("DELETE", "/tasks/{task_gid}", "delete"),
        ("GET", "/projects/{project_gid}/tasks", "list"),
        ("GET", "/sections/{section_gid}/tasks", "list"),
    }
    # What no document says, a person adds: here one workspace and one project to file tasks in.
    doc["collections"]["workspaces"]["seed"] = [{"gid": WORKSPACE, "name": "Acme"}]
    doc["collections"]["projects"]["seed"] = [{"gid": PROJECT, "name": "Follow-ups", "workspace": WORKSPACE}]
    auth = {"Authorization": "Bearer sandbox-asana_inferred-token"}
    with served(doc) as base:
        for n in range(25):
            created = requests.post(
                f"{base}/tasks", json={"data": {"name": f"Task {n}", "projects": [PROJECT], "workspace": WORKSPACE}}, headers=auth, timeout=5
            )
            assert created.status_code == 201, created.text
        task = created.json()["data"]
        assert task["projects"] == [{"gid": PROJECT, "resource_type": "project", "name": "Follow-ups"}]
        assert requests.get(f"{base}/tasks/{task['gid']}", headers=auth, timeout=5).json()["data"] == task
        first = requests.get(f"{base}/projects/{PROJECT}/tasks", headers=auth, timeout=5).json()
        second = requests.get(f"{base}/projects/{PROJECT}/tasks", params={"offset": first["next_page"]["offset"]}, headers=auth, timeout=5).json()
        assert len(first["data"]) == 20 and len(second["data"]) == 5 and second["next_page"] is None
        refused = requests.post(f"{base}/tasks", json={"data": {"name": ["not", "text"]}}, headers=auth, timeout=5)
        assert refused.status_code == 400 and refused.json()["errors"][0]["message"].startswith("data/name:")
        assert requests.get(f"{base}/tasks/{task['gid']}", timeout=5).status_code == 401
    assert [m["status"] for m in own_mismatches("asana_inferred")] == [400]


def test_a_token_minted_by_the_control_api_acts_as_the_first_described_user(sandbox):
    token = requests.post(f"{sandbox}/_control/tokens", json={"vendor": "asana"}, timeout=5).json()["token"]
    me = api(sandbox, "GET", "/users/me", headers={"Authorization": f"Bearer {token}"}).json()["data"]
    assert me["gid"] == "1200000000000001"


def test_sections_of_a_project_hold_tasks_created_with_memberships(sandbox):
    sections = api(sandbox, "GET", f"/projects/{PROJECT}/sections").json()
    assert [s["name"] for s in sections["data"]] == ["To do", "Launch day", "After launch"] and sections["next_page"] is None
    made = api(sandbox, "POST", f"/projects/{PROJECT}/sections", json={"data": {"name": "Retro"}})
    assert made.status_code == 201 and made.json()["data"]["project"]["gid"] == PROJECT  # the path's project is the section's
    assert api(sandbox, "POST", "/projects/1399999999999999/sections", json={"data": {"name": "x"}}).status_code == 404
    # Memberships at creation take gids (the published document's read-only compact form is corrected by an erratum).
    launch = "1500000000000002"
    task = api(
        sandbox, "POST", "/tasks", json={"data": {"name": "Press release", "workspace": WORKSPACE, "memberships": [{"project": PROJECT, "section": launch}]}}
    ).json()["data"]
    assert task["memberships"] == [
        {
            "project": {"gid": PROJECT, "resource_type": "project", "name": "Incident follow-ups"},
            "section": {"gid": launch, "resource_type": "section", "name": "Launch day"},
        }
    ]
    assert [p["gid"] for p in task["projects"]] == [PROJECT]  # in the section's project, so project lists find it
    assert [t["gid"] for t in api(sandbox, "GET", f"/sections/{launch}/tasks").json()["data"]] == [task["gid"]]
    assert [t["gid"] for t in api(sandbox, "GET", "/tasks", params={"section": launch}).json()["data"]] == [task["gid"]]
    unknown = api(sandbox, "POST", "/tasks", json={"data": {"name": "x", "workspace": WORKSPACE, "memberships": [{"project": PROJECT, "section": "1"}]}})
    assert unknown.status_code == 400 and unknown.json()["errors"][0]["message"] == "memberships.section: Not a recognized ID: 1"
    assert mismatches(sandbox) == []


def test_comments_are_stories_on_a_task_written_by_the_tokens_user(sandbox):
    task = "1400000000000009"
    story = api(sandbox, "POST", f"/tasks/{task}/stories", json={"data": {"text": "Shipped to 10% of users"}})
    assert story.status_code == 201, story.text
    body = story.json()["data"]
    assert body["text"] == "Shipped to 10% of users" and body["type"] == "comment" and body["resource_subtype"] == "comment_added"
    assert body["created_by"] == {"gid": "1200000000000001", "resource_type": "user", "name": "Ada Admin"} and body["target"]["gid"] == task
    listed = api(sandbox, "GET", f"/tasks/{task}/stories").json()["data"]
    assert [s["gid"] for s in listed] == [body["gid"]] and set(listed[0]) == {"gid", "resource_type", "created_at", "created_by", "resource_subtype", "text"}
    assert api(sandbox, "GET", f"/stories/{body['gid']}").json()["data"]["text"] == "Shipped to 10% of users"
    assert api(sandbox, "POST", "/tasks/1499999999999999/stories", json={"data": {"text": "x"}}).status_code == 404
    assert mismatches(sandbox) == []


def test_a_batch_runs_each_action_through_the_described_routes_with_results_by_position(sandbox):
    def action(name: str) -> dict:
        return {"relative_path": "/tasks", "method": "post", "data": {"name": name, "projects": [PROJECT]}, "options": {"fields": ["name", "permalink_url"]}}

    actions = [
        action("First"),
        {"relative_path": "/tasks/1400000000000002", "method": "put", "data": {"completed": True}},
        {"relative_path": "/tasks/1499999999999999", "method": "get"},
        {"relative_path": "/tasks", "method": "post", "data": {"name": 7, "projects": [PROJECT]}},
        {"relative_path": "/users", "method": "get", "data": {"workspace": WORKSPACE}, "options": {"limit": 2}},
    ]
    answer = api(sandbox, "POST", "/batch", json={"data": {"actions": actions}})
    assert answer.status_code == 200, answer.text
    results = answer.json()["data"]
    assert [r["status_code"] for r in results] == [201, 200, 404, 400, 200]
    assert set(results[0]["body"]["data"]) == {"gid", "resource_type", "name", "resource_subtype", "permalink_url"}
    assert results[1]["body"]["data"]["completed"] is True
    assert results[2]["body"]["errors"][0]["message"] == "Unknown object: 1499999999999999"
    assert results[3]["body"]["errors"][0]["message"] == "data/name: 7 is not of type 'string'"
    assert len(results[4]["body"]["data"]) == 2 and results[4]["body"]["next_page"]["path"].startswith("/users?")
    # Each action was checked against the spec like a request of its own: the refused one is recorded, nothing else.
    assert [(m["path"], m["status"]) for m in mismatches(sandbox)] == [("/asana/api/1.0/tasks", 400)]
    too_many = api(sandbox, "POST", "/batch", json={"data": {"actions": [action(f"T{n}") for n in range(11)]}})
    assert too_many.status_code == 400 and "At most 10 actions" in too_many.json()["errors"][0]["message"]
    # A rate limit refuses the whole batch before any action runs.
    requests.put(f"{sandbox}/_control/faults/asana", json={"rate_limit_next": 1, "retry_after": 3}, timeout=5).raise_for_status()
    limited = api(sandbox, "POST", "/batch", json={"data": {"actions": [action("Never")]}})
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "3"
    names = [c["summary"] for c in requests.get(f"{sandbox}/_control/created", params={"vendor": "asana"}, timeout=5).json()]
    assert names == ["First"]


def test_a_description_erratum_must_point_into_the_document_and_say_why():
    base = {"vendor": "acme", "errors": {"template": {"message": "{message}"}}, "collections": {}, "routes": []}
    with pytest.raises(DescriptionInvalid, match=r"spec.errata\[0\] needs a pointer"):
        parse({**base, "spec": {"file": "x.json", "errata": [{"pointer": "/components", "value": {}}]}})
