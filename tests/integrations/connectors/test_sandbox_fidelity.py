"""The sandbox as a real client sees it: calls the vendors' SDKs make, answered as the vendors answer them."""

from __future__ import annotations

import requests

SLACK_SCOPES = ["channels:manage", "groups:write", "channels:read", "groups:read", "im:write", "im:read", "users:read"]


def slack_call(sandbox: str, token: str, method: str, **params) -> dict:
    return requests.post(f"{sandbox}/slack/api/{method}", headers={"Authorization": f"Bearer {token}"}, data=params, timeout=10).json()


def test_slack_channels_after_a_dm_exists_private_channels_and_members(sandbox):
    token = requests.post(f"{sandbox}/_control/tokens", json={"vendor": "slack", "scopes": SLACK_SCOPES}, timeout=5).json()["token"]
    user = slack_call(sandbox, token, "users.list")["members"][0]["id"]
    assert slack_call(sandbox, token, "conversations.open", users=user)["ok"] is True  # a DM: a record without a name

    created = slack_call(sandbox, token, "conversations.create", name="incident-war-room", is_private="true")
    assert created["ok"] is True, created
    channel = created["channel"]
    assert channel["id"].startswith("C") and channel["is_private"] is True and channel["is_group"] is False and channel["is_channel"] is False
    assert slack_call(sandbox, token, "conversations.create", name="incident-war-room") == {"ok": False, "error": "name_taken"}

    slack_call(sandbox, token, "conversations.invite", channel=channel["id"], users=user)
    members = slack_call(sandbox, token, "conversations.members", channel=channel["id"], limit=1)
    assert members["ok"] is True and len(members["members"]) == 1 and members["response_metadata"]["next_cursor"]
    rest = slack_call(sandbox, token, "conversations.members", channel=channel["id"], cursor=members["response_metadata"]["next_cursor"])
    assert sorted(members["members"] + rest["members"]) == sorted({user, created["channel"]["creator"]})
    assert slack_call(sandbox, token, "conversations.members", channel="C000NOPE")["error"] == "channel_not_found"


def token(sandbox: str, vendor: str, **grant) -> str:
    return requests.post(f"{sandbox}/_control/tokens", json={"vendor": vendor, **grant}, timeout=5).json()["token"]


def test_jira_projects_list_one_project_and_the_latest_api_alias(sandbox):
    from tests.integrations.test_jira_oauth import CLOUD_ID

    auth = ("jira.admin@acme.example", token(sandbox, "jira", subject="jira.admin@acme.example"))
    listed = requests.get(f"{sandbox}/jira/rest/api/3/project", auth=auth, timeout=5)
    assert listed.status_code == 200 and [p["key"] for p in listed.json()] == ["LAUNCH", "MNA", "OPS"]
    ops = requests.get(f"{sandbox}/jira/rest/api/3/project/OPS", auth=auth, timeout=5).json()
    assert ops["key"] == "OPS" and ops["lead"]["accountId"] and {t["name"] for t in ops["issueTypes"]} >= {"Task", "Bug"}
    by_id = requests.get(f"{sandbox}/jira/rest/api/3/project/{ops['id']}", auth=auth, timeout=5).json()
    assert by_id["key"] == "OPS"
    missing = requests.get(f"{sandbox}/jira/rest/api/3/project/NOPE", auth=auth, timeout=5)
    assert missing.status_code == 404 and missing.json() == {"errorMessages": ["No project could be found with key 'NOPE'."], "errors": {}}
    latest = requests.get(f"{sandbox}/jira/rest/api/latest/project/OPS", auth=auth, timeout=5)
    assert latest.status_code == 200 and latest.json() == ops
    myself = requests.get(f"{sandbox}/jira/rest/api/latest/myself", auth=auth, timeout=5)
    assert myself.status_code == 200 and myself.json()["emailAddress"] == "jira.admin@acme.example"
    bearer = {"Authorization": f"Bearer {token(sandbox, 'jira', scopes=['read:jira-work'])}"}
    through_gateway = requests.get(f"{sandbox}/jira/ex/jira/{CLOUD_ID}/rest/api/latest/project/OPS", headers=bearer, timeout=5)
    assert through_gateway.status_code == 200 and through_gateway.json()["key"] == "OPS"
    unauthenticated = requests.get(f"{sandbox}/jira/rest/api/latest/project/OPS", timeout=5)
    assert unauthenticated.status_code == 401


def test_google_calendars_get(sandbox):
    headers = {"Authorization": f"Bearer {token(sandbox, 'google_calendar', subject='ava.chen@acme.example')}"}
    primary = requests.get(f"{sandbox}/google_calendar/calendar/v3/calendars/primary", headers=headers, timeout=5)
    assert primary.status_code == 200 and primary.json()["id"] == "ava.chen@acme.example" and primary.json()["kind"] == "calendar#calendar"
    shared = requests.get(f"{sandbox}/google_calendar/calendar/v3/calendars/en.uk%23holiday@group.v.calendar.google.com", headers=headers, timeout=5)
    assert shared.status_code == 200 and shared.json()["summary"] == "Holidays in United Kingdom"
    unknown = requests.get(f"{sandbox}/google_calendar/calendar/v3/calendars/nobody@else.example", headers=headers, timeout=5)
    assert unknown.status_code == 404 and unknown.json()["error"]["errors"][0]["reason"] == "notFound"


def test_pagerduty_schedules_and_the_from_header_on_writes_with_an_api_key(sandbox):
    from sandbox.vendors.pagerduty import DEMO_TOKEN, DEMO_USER

    api_key = {"Authorization": f"Token token={DEMO_TOKEN}", "Accept": "application/vnd.pagerduty+json;version=2"}
    schedules = requests.get(f"{sandbox}/pagerduty/schedules", headers=api_key, params={"limit": 2}, timeout=5).json()
    assert len(schedules["schedules"]) == 2 and schedules["more"] is True and schedules["schedules"][0]["users"]
    one = requests.get(f"{sandbox}/pagerduty/schedules/{schedules['schedules'][0]['id']}", headers=api_key, timeout=5).json()
    assert one["schedule"]["id"] == schedules["schedules"][0]["id"]
    service = requests.get(f"{sandbox}/pagerduty/services", headers=api_key, timeout=5).json()["services"][0]
    body = {"incident": {"type": "incident", "title": "Disk full", "service": {"id": service["id"], "type": "service_reference"}}}
    without_from = requests.post(f"{sandbox}/pagerduty/incidents", headers=api_key, json=body, timeout=5)
    assert without_from.status_code == 400 and without_from.json()["error"]["code"] == 2001
    with_from = requests.post(f"{sandbox}/pagerduty/incidents", headers={**api_key, "From": DEMO_USER}, json=body, timeout=5)
    assert with_from.status_code == 201


def test_twilio_message_redaction_cancel_and_delete(sandbox):
    from sandbox.vendors.twilio import ACCOUNT_SID, AUTH_TOKEN

    base = f"{sandbox}/twilio/2010-04-01/Accounts/{ACCOUNT_SID}/Messages"
    auth = (ACCOUNT_SID, AUTH_TOKEN)
    sent = requests.post(f"{base}.json", auth=auth, data={"To": "+447700900001", "From": "+15005550006", "Body": "secret text"}, timeout=5).json()
    in_flight = requests.post(f"{base}/{sent['sid']}.json", auth=auth, data={"Body": ""}, timeout=5)
    assert in_flight.status_code == 400 and in_flight.json()["code"] == 20009
    requests.post(f"{sandbox}/twilio/_sandbox/messages/{sent['sid']}/status", json={"status": "delivered"}, timeout=5)
    redacted = requests.post(f"{base}/{sent['sid']}.json", auth=auth, data={"Body": ""}, timeout=5)
    assert redacted.status_code == 200 and redacted.json()["body"] == "" and redacted.json()["status"] == "delivered"
    assert requests.post(f"{base}/{sent['sid']}.json", auth=auth, data={"Body": "new text"}, timeout=5).status_code == 400
    not_scheduled = requests.post(f"{base}/{sent['sid']}.json", auth=auth, data={"Status": "canceled"}, timeout=5)
    assert not_scheduled.status_code == 400 and not_scheduled.json()["code"] == 30409
    assert requests.delete(f"{base}/{sent['sid']}.json", auth=auth, timeout=5).status_code == 204
    assert requests.get(f"{base}/{sent['sid']}.json", auth=auth, timeout=5).status_code == 404
