"""The sandbox's spec check itself: it names what the vendor's published spec does not allow, and stays quiet otherwise."""

from __future__ import annotations

import requests

from sandbox.spec_check import check_exchange


def exchange(vendor: str, method: str, path: str, *, status: int = 200, body=None, form=None, query=None, headers=None, answer=None) -> list[str]:
    return check_exchange(
        vendor,
        method=method,
        path=path,
        query=query or {},
        headers=headers or {},
        form=form or {},
        body=body,
        status=status,
        content_type="application/json",
        answer=answer,
    )


def test_requests_outside_the_spec_are_named_when_a_stand_in_accepts_them():
    assert exchange("jira", "GET", "/jira/rest/api/3/no-such-thing") == [
        "request: /rest/api/3/no-such-thing is not a path in the spec, yet the stand-in answered 200"
    ]
    assert exchange("jira", "PATCH", "/jira/rest/api/3/myself") == ["request: PATCH is not an operation on /rest/api/3/myself, yet the stand-in answered 200"]
    bad_body = exchange("jira", "POST", "/jira/rest/api/3/issue", status=201, body={"fields": "not an object"})
    assert bad_body and bad_body[0].startswith("request: fields: 'not an object' is not of type 'object'")
    form = exchange("twilio", "POST", "/twilio/2010-04-01/Accounts/AC1/Messages/SM1.json", form={"Body": "", "Colour": "red"})
    assert form == ["request: form field 'Colour' is not in the spec"]
    # A stand-in that refused the request did its job: nothing to report about the request.
    assert exchange("jira", "GET", "/jira/rest/api/3/no-such-thing", status=404) == []


def test_answers_are_checked_against_the_documented_schema():
    wrong = exchange("jira", "GET", "/jira/rest/api/3/myself", answer={"accountId": 5})
    assert wrong == ["answer 200: accountId: 5 is not of type 'string'"]
    assert exchange("jira", "GET", "/jira/rest/api/3/myself", answer={"accountId": "557058:abc", "displayName": "Ava"}) == []
    created = exchange("pagerduty", "POST", "/pagerduty/webhook_subscriptions", status=201, body={"webhook_subscription": {}})
    assert "answer 201: HTTP 201 is not an answer the spec documents (it lists 200, 400, 401, 403)" in created
    assert "request: required header 'Accept' is missing" in created  # PagerDuty versions its API by the Accept header


def test_the_gateway_the_latest_alias_and_own_routes_map_onto_the_spec():
    assert exchange("jira", "GET", "/jira/ex/jira/11223344-a1b2-3b33-c444-def123456789/rest/api/latest/myself", answer={"accountId": "x"}) == []
    assert exchange("jira", "POST", "/jira/_sandbox/transition") == []
    assert exchange("jira", "POST", "/jira/oauth/token") == []
    assert exchange("slack", "POST", "/slack/api/users.list") == []  # Slack serves every method on GET and POST


def test_the_running_sandbox_records_mismatches(sandbox):
    # An unknown Jira route answered by the stand-in with an error is not a mismatch; the list starts empty after a reset.
    assert requests.get(f"{sandbox}/_control/spec-mismatches", timeout=5).json() == []
