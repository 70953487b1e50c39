"""The declared engine's table-style features, over real HTTP against the ServiceNow stand-in (sandbox/declared/servicenow.yaml):
basic and client-credentials auth, string values, {link, value} references, exact and dot-walked fields, encoded queries,
Link-header paging, journal fields, the error envelope, lost answers and signed outbound deliveries."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from sandbox.declared.encoded_query import apply, parse
from tests.conftest import wait_for

AUTH = ("bastion.integration", "sandbox-servicenow-password")
JSON = {"Accept": "application/json"}


def api(sandbox: str, method: str, path: str, **kwargs) -> requests.Response:
    headers = {**JSON, **({"Content-Type": "application/json"} if "json" in kwargs else {}), **kwargs.pop("headers", {})}
    return requests.request(method, f"{sandbox}/servicenow/api/now{path}", auth=kwargs.pop("auth", AUTH), headers=headers, timeout=10, **kwargs)


class BusinessRuleTarget:
    """Where the customer's Business Rule posts (Bastion's public URL): records each delivery for the test to relay."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.requests.append({"headers": dict(self.headers.items()), "body": body})
                self.send_response(202)
                self.end_headers()

            def log_message(self, *args):
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/api/webhooks/servicenow"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()


def mismatches(sandbox: str) -> list[dict]:
    return requests.get(f"{sandbox}/_control/spec-mismatches", timeout=5).json()


def test_every_value_is_a_string_and_references_are_links_unless_excluded(sandbox):
    incident = api(sandbox, "GET", "/table/incident/e1000000000000000000000000100001").json()["result"]
    assert all(isinstance(v, str) or set(v) == {"link", "value"} for v in incident.values())
    assert incident["assigned_to"] == {
        "link": f"{sandbox}/servicenow/api/now/table/sys_user/a0000000000000000000000000000006",
        "value": "a0000000000000000000000000000006",
    }
    assert incident["number"] == "INC0010091" and incident["urgency"] in ("1", "2", "3") and len(incident["sys_updated_on"]) == 19
    bare = api(sandbox, "GET", "/table/incident/e1000000000000000000000000100001", params={"sysparm_exclude_reference_link": "true"}).json()["result"]
    assert bare["assigned_to"] == "a0000000000000000000000000000006" and bare["correlation_id"] == ""
    walked = api(
        sandbox, "GET", "/table/sys_user", params={"sysparm_query": "user_name=amara.nwosu", "sysparm_fields": "name,manager.email,department.name,nope"}
    )
    assert walked.json()["result"] == [{"name": "Amara Nwosu", "manager.email": "marcus.okafor@acme.example", "department.name": "Security"}]


def test_encoded_queries_filter_and_order_and_paging_follows_the_link_header(sandbox):
    query = "stateIN1,2^urgency=1^ORurgency=2^short_descriptionLIKEvpn^ORDERBYDESCsys_updated_on"
    everything = api(sandbox, "GET", "/table/incident", params={"sysparm_query": query, "sysparm_fields": "state,urgency,short_description,sys_updated_on"})
    rows = everything.json()["result"]
    assert rows and all(r["state"] in ("1", "2") and r["urgency"] in ("1", "2") and "VPN" in r["short_description"] for r in rows)
    assert [r["sys_updated_on"] for r in rows] == sorted((r["sys_updated_on"] for r in rows), reverse=True)
    assert everything.headers["X-Total-Count"] == str(len(rows)) and "Link" not in everything.headers  # one page

    seen, url, pages = [], f"{sandbox}/servicenow/api/now/table/incident", 0
    params = {"sysparm_query": query, "sysparm_limit": "4", "sysparm_fields": "sys_id"}
    while url:
        page = requests.get(url, params=params, auth=AUTH, headers=JSON, timeout=10)
        seen += [r["sys_id"] for r in page.json()["result"]]
        pages += 1
        url, params = page.links.get("next", {}).get("url"), None
        if pages == 1:
            assert {"first", "next", "last"} <= set(page.links) and "prev" not in page.links
            assert parse_qs(urlsplit(page.links["last"]["url"]).query)["sysparm_offset"] == [str(((len(rows) - 1) // 4) * 4)]
    assert len(seen) == len(set(seen)) == len(rows) and pages == -(-len(rows) // 4)
    assert not mismatches(sandbox)


def test_the_encoded_query_parser_reads_the_vendors_grammar_and_ignores_unknown_fields():
    known = {"state", "urgency", "sys_updated_on", "number"}.__contains__
    clauses, order = parse("state!=7^urgency>=2^ORnumber=INC1^bogus=1^ORDERBYnumber^ORDERBYDESCurgency", known)
    assert clauses == [[("state", "!=", "7")], [("urgency", ">=", "2"), ("number", "=", "INC1")]] and order == [("number", False), ("urgency", True)]
    rows = [{"state": "1", "urgency": "10", "number": "A"}, {"state": "7", "urgency": "3", "number": "B"}, {"state": "2", "urgency": "9", "number": "C"}]
    picked = apply(rows, "state!=7^urgency>2^ORDERBYDESCurgency", value_of=lambda r, f: r.get(f, ""), known=lambda f: f in rows[0])
    assert [r["number"] for r in picked] == ["A", "C"]  # 10 > 9 as numbers, not as text


def test_inserts_number_themselves_write_journal_fields_and_answer_location(sandbox):
    created = api(sandbox, "POST", "/table/incident", json={"short_description": "Disk full", "urgency": "1", "work_notes": "first look"})
    assert created.status_code == 201
    record = created.json()["result"]
    assert record["urgency"] == "1" and record["number"] == "INC0010301" and record["work_notes"] == ""
    assert created.headers["Location"] == f"{sandbox}/servicenow/api/now/table/incident/{record['sys_id']}"
    api(sandbox, "PATCH", f"/table/incident/{record['sys_id']}", json={"work_notes": "second look", "assigned_to": "ava.chen@acme.example"})
    notes = api(sandbox, "GET", "/table/sys_journal_field", params={"sysparm_query": f"element_id={record['sys_id']}^ORDERBYvalue"}).json()["result"]
    assert [n["value"] for n in notes] == ["first look", "second look"] and notes[0]["element"] == "work_notes" and notes[0]["name"] == "incident"
    again = api(sandbox, "GET", f"/table/incident/{record['sys_id']}", params={"sysparm_fields": "assigned_to.email"}).json()["result"]
    assert again == {"assigned_to.email": "ava.chen@acme.example"}  # a reference given by a lookup field lands as the id
    assert not mismatches(sandbox)


def test_auth_errors_acl_refusals_and_the_error_envelope(sandbox):
    unauthenticated = api(sandbox, "GET", "/table/incident", auth=("bastion.integration", "wrong"))
    assert unauthenticated.status_code == 401
    assert unauthenticated.json() == {"error": {"message": "User Not Authenticated", "detail": "Required to provide Auth information"}, "status": "failure"}
    readonly = ("auditor.readonly", "sandbox-servicenow-readonly")
    assert api(sandbox, "GET", "/table/incident", auth=readonly, params={"sysparm_limit": "1"}).status_code == 200
    refused = api(sandbox, "POST", "/table/incident", auth=readonly, json={"short_description": "x"})
    assert refused.status_code == 403 and refused.json()["error"]["detail"].startswith("ACL Exception")
    missing = api(sandbox, "GET", "/table/incident/0123456789abcdef0123456789abcdef")
    assert missing.status_code == 404 and missing.json()["error"]["message"] == "No Record found"

    token_url = f"{sandbox}/servicenow/oauth_token.do"
    form = {"grant_type": "client_credentials", "client_id": "bastion-sandbox-client", "client_secret": "sandbox-servicenow-client-secret"}
    assert requests.post(token_url, json=form, timeout=5).status_code == 400  # form-encoded only
    assert requests.post(token_url, data={**form, "client_secret": "nope"}, timeout=5).json() == {"error": "server_error", "error_description": "access_denied"}
    token = requests.post(token_url, data=form, timeout=5).json()
    assert token["token_type"] == "Bearer" and token["expires_in"] == 1799 and token["scope"] == "useraccount"
    bearer = requests.get(f"{sandbox}/servicenow/api/now/table/sys_user_group", headers={**JSON, "Authorization": f"Bearer {token['access_token']}"}, timeout=5)
    assert [g["name"] for g in bearer.json()["result"]] == ["Network", "Database", "Service Desk", "Security Operations"]


def test_a_lost_answer_still_makes_the_change(sandbox):
    requests.post(f"{sandbox}/servicenow/_sandbox/lose-answer", json={"method": "POST", "path": "/table/incident"}, timeout=5).raise_for_status()
    lost = api(sandbox, "POST", "/table/incident", json={"short_description": "Lost answer", "correlation_id": "bastion-x"})
    assert lost.status_code == 502
    found = api(sandbox, "GET", "/table/incident", params={"sysparm_query": "correlation_id=bastion-x", "sysparm_fields": "short_description"})
    assert found.json()["result"] == [{"short_description": "Lost answer"}]
    assert api(sandbox, "POST", "/table/incident", json={"short_description": "Answered"}).status_code == 201  # only one was lost


@pytest.fixture
def rule_target():
    target = BusinessRuleTarget()
    yield target
    target.server.shutdown()


def test_outbound_rules_post_signed_records_on_every_change(sandbox, rule_target):
    refused = requests.post(f"{sandbox}/servicenow/_sandbox/outbound", json={"collection": "users", "url": rule_target.url, "secret": "s"}, timeout=5)
    assert refused.status_code == 400
    rule = requests.post(f"{sandbox}/servicenow/_sandbox/outbound", json={"collection": "incidents", "url": rule_target.url, "secret": "s3cret"}, timeout=5)
    assert rule.status_code == 201
    api(sandbox, "PATCH", "/table/incident/e1000000000000000000000000100002", json={"state": "6"})
    delivery = wait_for(lambda: rule_target.requests, message="the outbound delivery")[0]
    body, stamp = delivery["body"], delivery["headers"]["X-Bastion-Timestamp"]
    expected = base64.b64encode(hmac.new(b"s3cret", stamp.encode() + b"." + body, hashlib.sha256).digest()).decode()
    assert delivery["headers"]["X-Bastion-Signature"] == expected
    payload = json.loads(body)
    assert (payload["table"], payload["operation"], payload["sys_id"]) == ("incident", "update", "e1000000000000000000000000100002")
    assert payload["record"]["state"] == "6" and payload["record"]["assigned_to.email"] == "mateo.lopez@acme.example"
    forged = requests.post(
        f"{sandbox}/servicenow/_sandbox/outbound/{rule.json()['id']}/deliver", json={"record": payload["sys_id"], "forge": True, "age_seconds": 600}, timeout=10
    )
    assert forged.json()["forged"] is True
    last = rule_target.requests[-1]
    assert int(last["headers"]["X-Bastion-Timestamp"]) <= int(stamp) - 590 and last["headers"]["X-Bastion-Signature"] != expected
