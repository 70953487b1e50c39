"""The Microsoft 365 stand-in over real HTTP: Entra sign-in, Graph teams/channels/messages, calendar, files, Excel, batching, subscriptions."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import requests

from sandbox.spec_check import check_exchange
from tests.conftest import wait_for

TENANT = "a1b2c3d4-0000-4000-8000-000000000001"
TEAM = "Bastion Incident Response"
CARD = "application/vnd.microsoft.card.adaptive"


@pytest.fixture(autouse=True)
def _spec_conformance(request):
    """After each test: anything the stand-in accepted or answered that Graph's published description does not allow fails it."""
    yield
    if "sandbox" not in request.fixturenames:
        return
    server = request.getfixturevalue("sandbox_server")
    mismatches = [m for m in requests.get(f"{server.url}/_control/spec-mismatches", timeout=10).json() if m["vendor"] == "microsoft365"]
    assert not mismatches, "\n".join(f"{m['method']} {m['path']} → {m['status']}: {'; '.join(m['problems'])}" for m in mismatches[:20])


def graph(sandbox: str) -> str:
    return f"{sandbox}/microsoft365/v1.0"


def token(sandbox: str, subject: str = "amara.nwosu@acme.example", scopes: list[str] | None = None) -> dict[str, str]:
    """Bearer headers for a delegated user (subject = their email) or an application (subject = app:...)."""
    answer = requests.post(f"{sandbox}/_control/tokens", json={"vendor": "microsoft365", "subject": subject, "scopes": scopes or []}, timeout=5)
    return {"Authorization": f"Bearer {answer.json()['token']}"}


def app_token(sandbox: str) -> dict[str, str]:
    answer = requests.post(
        f"{sandbox}/microsoft365/{TENANT}/oauth2/v2.0/token",
        data={"grant_type": "client_credentials", "client_id": "bastion-app", "client_secret": "s3cret", "scope": "https://graph.microsoft.com/.default"},
        timeout=5,
    )
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def team_id(sandbox: str, headers: dict[str, str]) -> str:
    teams = requests.get(f"{graph(sandbox)}/me/joinedTeams", headers=headers, timeout=5).json()["value"]
    return next(t["id"] for t in teams if t["displayName"] == TEAM)


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


def card_message(text: str = "Incident SEC-1 declared") -> dict:
    card = {"type": "AdaptiveCard", "version": "1.4", "body": [{"type": "TextBlock", "text": text, "weight": "Bolder"}]}
    return {
        "body": {"contentType": "html", "content": '<attachment id="c1"></attachment>'},
        "attachments": [{"id": "c1", "contentType": CARD, "content": json.dumps(card)}],
    }


# ---- Entra sign-in
def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def sign_in(sandbox: str, scope: str, verifier_challenge: tuple[str, str]) -> str:
    """The consent page lists the scopes; Accept redirects to the callback with a code."""
    _verifier, challenge = verifier_challenge
    params = {
        "client_id": "bastion-app",
        "redirect_uri": "http://127.0.0.1:9/callback",
        "response_type": "code",
        "scope": scope,
        "state": "st-1",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    url = f"{sandbox}/microsoft365/organizations/oauth2/v2.0/authorize"
    page = requests.get(url, params=params, timeout=5)
    assert page.status_code == 200 and "Authorize Bastion" in page.text and 'id="allow"' in page.text
    assert all(s in page.text for s in scope.split())  # every requested scope is listed before consent
    answer = requests.post(url, data={**params, "decision": "allow"}, allow_redirects=False, timeout=5)
    assert answer.status_code == 302
    query = parse_qs(urlsplit(answer.headers["Location"]).query)
    assert query["state"] == ["st-1"]
    return query["code"][0]


def test_authorization_code_with_pkce_then_refresh_rotation(sandbox):
    verifier, challenge = pkce()
    scope = "openid offline_access https://graph.microsoft.com/ChannelMessage.Send https://graph.microsoft.com/Calendars.ReadWrite"
    code = sign_in(sandbox, scope, (verifier, challenge))
    token_url = f"{sandbox}/microsoft365/organizations/oauth2/v2.0/token"
    form = {"grant_type": "authorization_code", "client_id": "bastion-app", "code": code, "redirect_uri": "http://127.0.0.1:9/callback"}
    wrong = requests.post(token_url, data={**form, "code_verifier": "not-the-verifier"}, timeout=5)
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"  # the code is spent by the failed try, like Entra
    code = sign_in(sandbox, scope, (verifier, challenge))
    granted = requests.post(token_url, data={**form, "code": code, "code_verifier": verifier}, timeout=5).json()
    assert granted["token_type"] == "Bearer" and granted["refresh_token"] and "ChannelMessage.Send" in granted["scope"]
    me = requests.get(f"{graph(sandbox)}/me", headers={"Authorization": f"Bearer {granted['access_token']}"}, timeout=5).json()
    assert me["userPrincipalName"] == "amara.nwosu@acme.example"
    refresh = {"grant_type": "refresh_token", "client_id": "bastion-app", "refresh_token": granted["refresh_token"]}
    renewed = requests.post(token_url, data=refresh, timeout=5).json()
    assert renewed["refresh_token"] != granted["refresh_token"]
    reused = requests.post(token_url, data=refresh, timeout=5)
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"


def test_client_credentials_need_the_default_scope_and_cannot_use_me(sandbox):
    url = f"{sandbox}/microsoft365/{TENANT}/oauth2/v2.0/token"
    base = {"grant_type": "client_credentials", "client_id": "bastion-app", "client_secret": "s3cret"}
    assert requests.post(url, data={**base, "scope": "User.Read.All"}, timeout=5).json()["error"] == "invalid_scope"
    assert requests.post(url, data={**base, "client_secret": "wrong-secret", "scope": "https://graph.microsoft.com/.default"}, timeout=5).status_code == 401
    headers = app_token(sandbox)
    me = requests.get(f"{graph(sandbox)}/me", headers=headers, timeout=5)
    assert me.status_code == 400 and me.json()["error"]["code"] == "BadRequest"
    assert "refresh_token" not in requests.post(url, data={**base, "scope": "https://graph.microsoft.com/.default"}, timeout=5).json()


# ---- directory and Teams
def test_users_are_the_entra_directory_and_filter_by_mail(sandbox):
    headers = app_token(sandbox)
    found = requests.get(f"{graph(sandbox)}/users", params={"$filter": "mail eq 'priya.raman@acme.example'"}, headers=headers, timeout=5).json()["value"]
    entra = requests.get(f"{sandbox}/entra/v1.0/users/priya.raman@acme.example", headers=token(sandbox, "entra-admin") | {}, timeout=5)
    assert [u["displayName"] for u in found] == ["Priya Raman"]
    by_upn = requests.get(f"{graph(sandbox)}/users/priya.raman@acme.example", headers=headers, timeout=5).json()
    assert by_upn["id"] == found[0]["id"] and entra.status_code == 401  # a Microsoft 365 token is not an Entra-stand-in token
    search = {"$search": '"displayName:pri"', "$count": "true"}
    assert requests.get(f"{graph(sandbox)}/users", params=search, headers=headers, timeout=5).status_code == 400  # needs ConsistencyLevel
    hits = requests.get(f"{graph(sandbox)}/users", params=search, headers={**headers, "ConsistencyLevel": "eventual"}, timeout=5).json()
    assert [u["displayName"] for u in hits["value"]] == ["Priya Raman"] and hits["@odata.count"] == 1
    bad = requests.get(f"{graph(sandbox)}/users", params={"$filter": "mail gt 'x'"}, headers=headers, timeout=5)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "Request_UnsupportedQuery"


def test_paging_follows_absolute_next_links_with_top(sandbox):
    headers = app_token(sandbox)
    url, params, names, pages = f"{graph(sandbox)}/users", {"$top": "6", "$select": "displayName,mail"}, [], 0
    while url:
        body = requests.get(url, params=params, headers=headers, timeout=5).json()
        names += [u["displayName"] for u in body["value"]]
        assert all(set(u) <= {"id", "displayName", "mail"} for u in body["value"])
        url, params, pages = body.get("@odata.nextLink"), None, pages + 1
        assert url is None or url.startswith(f"{sandbox}/microsoft365/v1.0/users?")
    assert pages == 4 and len(names) == 20 == len(set(names))


def test_teams_listed_as_groups_and_joined_teams(sandbox):
    headers = app_token(sandbox)
    groups = requests.get(f"{graph(sandbox)}/groups", params={"$filter": "resourceProvisioningOptions/Any(x:x eq 'Team')"}, headers=headers, timeout=5).json()
    assert [g["displayName"] for g in groups["value"]] == [TEAM] and groups["value"][0]["resourceProvisioningOptions"] == ["Team"]
    delegated = token(sandbox)
    tid = team_id(sandbox, delegated)
    channels = requests.get(f"{graph(sandbox)}/teams/{tid}/channels", headers=delegated, timeout=5).json()["value"]
    assert [c["displayName"] for c in channels] == ["General"]
    outsider = requests.get(f"{graph(sandbox)}/me/joinedTeams", headers=token(sandbox, "grace.obrien@acme.example"), timeout=5).json()
    assert outsider["value"] == []


def test_private_channel_members_and_adaptive_card_posting(sandbox):
    delegated = token(sandbox)
    tid = team_id(sandbox, delegated)
    created = requests.post(
        f"{graph(sandbox)}/teams/{tid}/channels",
        json={"displayName": "sec-1 war room", "description": "SEC-1", "membershipType": "private"},
        headers=delegated,
        timeout=5,
    )
    assert created.status_code == 201, created.text
    channel = created.json()
    assert channel["membershipType"] == "private" and channel["id"].startswith("19:")
    again = requests.post(f"{graph(sandbox)}/teams/{tid}/channels", json={"displayName": "SEC-1 War Room"}, headers=delegated, timeout=5)
    assert again.status_code == 400 and again.json()["error"]["code"] == "NameAlreadyExists"
    members_url = f"{graph(sandbox)}/teams/{tid}/channels/{channel['id']}/members"
    priya = requests.get(f"{graph(sandbox)}/users/priya.raman@acme.example", headers=delegated, timeout=5).json()
    bind = {
        "@odata.type": "#microsoft.graph.aadUserConversationMember",
        "roles": [],
        "user@odata.bind": f"https://graph.microsoft.com/v1.0/users('{priya['id']}')",
    }
    assert requests.post(members_url, json=bind, headers=delegated, timeout=5).status_code == 201
    outsider = {**bind, "user@odata.bind": "https://graph.microsoft.com/v1.0/users('grace.obrien@acme.example')"}
    refused = requests.post(members_url, json=outsider, headers=delegated, timeout=5)
    assert refused.status_code == 400 and "add them to the team first" in refused.json()["error"]["message"]
    members = requests.get(members_url, headers=delegated, timeout=5).json()["value"]
    assert {m["email"] for m in members} == {"amara.nwosu@acme.example", "priya.raman@acme.example"}
    messages_url = f"{graph(sandbox)}/teams/{tid}/channels/{channel['id']}/messages"
    posted = requests.post(messages_url, json=card_message(), headers=delegated, timeout=5)
    assert posted.status_code == 201, posted.text
    assert posted.json()["attachments"][0]["contentType"] == CARD and posted.json()["from"]["user"]["displayName"] == "Amara Nwosu"
    listed = requests.get(messages_url, headers=delegated, timeout=5).json()["value"]
    assert [m["id"] for m in listed] == [posted.json()["id"]]


def test_card_shape_is_validated_and_application_tokens_cannot_post(sandbox):
    delegated = token(sandbox)
    tid = team_id(sandbox, delegated)
    general = requests.get(f"{graph(sandbox)}/teams/{tid}/channels", headers=delegated, timeout=5).json()["value"][0]["id"]
    url = f"{graph(sandbox)}/teams/{tid}/channels/{general}/messages"
    unreferenced = card_message()
    unreferenced["body"]["content"] = "see card"
    assert "not referenced" in requests.post(url, json=unreferenced, headers=delegated, timeout=5).json()["error"]["message"]
    as_object = card_message()
    as_object["attachments"][0]["content"] = {"type": "AdaptiveCard"}
    refused = requests.post(url, json=as_object, headers=delegated, timeout=5).json()["error"]["message"]
    assert refused.startswith("Invalid request body: attachments/0/content:")  # the description types content as a string
    not_a_card = card_message()
    not_a_card["attachments"][0]["content"] = json.dumps({"type": "HeroCard", "version": "1.4", "body": []})
    assert requests.post(url, json=not_a_card, headers=delegated, timeout=5).status_code == 400
    app_only = requests.post(url, json=card_message(), headers=app_token(sandbox), timeout=5)
    assert app_only.status_code == 401 and "application-only context only for import" in app_only.json()["error"]["message"]
    no_scope = requests.post(url, json=card_message(), headers=token(sandbox, scopes=["Calendars.ReadWrite"]), timeout=5)
    assert no_scope.status_code == 403 and "ChannelMessage.Send" in no_scope.json()["error"]["message"]


def test_standard_channel_delete_keeps_the_name_and_team_members_join(sandbox):
    headers = app_token(sandbox)
    tid = requests.get(f"{graph(sandbox)}/teams", headers=headers, timeout=5).json()["value"][0]["id"]
    channel = requests.post(f"{graph(sandbox)}/teams/{tid}/channels", json={"displayName": "ops-7"}, headers=headers, timeout=5).json()
    add = {
        "@odata.type": "#microsoft.graph.aadUserConversationMember",
        "roles": [],
        "user@odata.bind": "https://graph.microsoft.com/v1.0/users('grace.obrien@acme.example')",
    }
    assert requests.post(f"{graph(sandbox)}/teams/{tid}/members", json=add, headers=headers, timeout=5).status_code == 201
    assert requests.post(f"{graph(sandbox)}/teams/{tid}/channels/{channel['id']}/members", json=add, headers=headers, timeout=5).status_code == 400
    assert requests.delete(f"{graph(sandbox)}/teams/{tid}/channels/{channel['id']}", headers=headers, timeout=5).status_code == 204
    assert requests.get(f"{graph(sandbox)}/teams/{tid}/channels/{channel['id']}", headers=headers, timeout=5).status_code == 404
    reuse = requests.post(f"{graph(sandbox)}/teams/{tid}/channels", json={"displayName": "ops-7"}, headers=headers, timeout=5)
    assert reuse.status_code == 400  # a deleted channel's name stays taken while it can be restored
    created = requests.get(f"{sandbox}/_control/created", params={"vendor": "microsoft365", "kind": "channel"}, timeout=5).json()
    assert [c["summary"] for c in created] == [f"#ops-7 (standard) in {TEAM}"]


# ---- Outlook calendar
def test_find_a_time_book_event_with_room_and_teams_link_then_responses_and_cancel(sandbox):
    headers = token(sandbox)
    rooms = requests.get(f"{graph(sandbox)}/places/microsoft.graph.room", headers=headers, timeout=5).json()["value"]
    assert len(rooms) == 3 and {"emailAddress", "capacity", "displayName"} <= set(rooms[0])
    boardroom = next(r for r in rooms if r["displayName"] == "Boardroom")
    nine = datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0) + timedelta(days=1)
    while nine.weekday() >= 5:  # the seeded busy block is on the next working day
        nine += timedelta(days=1)
    window = {"StartTime": {"dateTime": iso(nine), "timeZone": "UTC"}, "EndTime": {"dateTime": iso(nine + timedelta(hours=4)), "timeZone": "UTC"}}
    schedule = requests.post(
        f"{graph(sandbox)}/me/calendar/getSchedule",
        json={"schedules": ["priya.raman@acme.example", boardroom["emailAddress"], "nobody@acme.example"], **window, "availabilityViewInterval": 60},
        headers=headers,
        timeout=5,
    ).json()["value"]
    assert [s.get("availabilityView") for s in schedule] == ["2200", "2200", ""] and schedule[2]["error"]["responseCode"] == "ErrorMailRecipientNotFound"
    slots = [{"start": {"dateTime": iso(nine), "timeZone": "UTC"}, "end": {"dateTime": iso(nine + timedelta(hours=4)), "timeZone": "UTC"}}]
    found = requests.post(
        f"{graph(sandbox)}/me/findMeetingTimes",
        json={
            "attendees": [{"type": "required", "emailAddress": {"address": "priya.raman@acme.example"}}],
            "timeConstraint": {"activityDomain": "work", "timeSlots": slots},
            "meetingDuration": "PT1H",
            "locationConstraint": {
                "isRequired": True,
                "suggestLocation": False,
                "locations": [{"displayName": "Boardroom", "locationEmailAddress": boardroom["emailAddress"]}],
            },
        },
        headers=headers,
        timeout=5,
    ).json()
    first = found["meetingTimeSuggestions"][0]
    assert first["meetingTimeSlot"]["start"]["dateTime"].startswith(iso(nine + timedelta(hours=2)))  # Priya and the Boardroom are busy until 11:00
    assert requests.post(f"{graph(sandbox)}/me/findMeetingTimes", json={}, headers=app_token(sandbox), timeout=5).status_code == 400  # /me needs a user
    start = first["meetingTimeSlot"]["start"]
    body = {
        "subject": "SEC-1 war room",
        "body": {"contentType": "html", "content": "<p>Bridge</p>"},
        "start": start,
        "end": first["meetingTimeSlot"]["end"],
        "attendees": [
            {"type": "required", "emailAddress": {"address": "priya.raman@acme.example", "name": "Priya Raman"}},
            {"type": "resource", "emailAddress": {"address": boardroom["emailAddress"]}},
        ],
        "location": {"displayName": "Boardroom", "locationEmailAddress": boardroom["emailAddress"]},
        "isOnlineMeeting": True,
        "onlineMeetingProvider": "teamsForBusiness",
        "transactionId": "sec-1-war-room",
    }
    created = requests.post(f"{graph(sandbox)}/me/events", json=body, headers=headers, timeout=5)
    assert created.status_code == 201, created.text
    event = created.json()
    assert event["onlineMeeting"]["joinUrl"].startswith("https://teams.microsoft.com/l/meetup-join/")
    assert {a["emailAddress"]["address"]: a["status"]["response"] for a in event["attendees"]} == {
        "priya.raman@acme.example": "none",
        boardroom["emailAddress"]: "accepted",
    }
    retried = requests.post(f"{graph(sandbox)}/me/events", json=body, headers=headers, timeout=5).json()
    assert retried["id"] == event["id"]  # same transactionId: no duplicate event
    respond = requests.post(
        f"{sandbox}/microsoft365/_control/events/{event['id']}/respond", json={"email": "priya.raman@acme.example", "response": "declined"}, timeout=5
    )
    assert respond.status_code == 200
    me = requests.get(f"{graph(sandbox)}/me", headers=headers, timeout=5).json()
    fetched = requests.get(f"{graph(sandbox)}/users/{me['id']}/events/{event['id']}", headers=app_token(sandbox), timeout=5).json()
    assert fetched["attendees"][0]["status"]["response"] == "declined"
    view = requests.get(
        f"{graph(sandbox)}/me/calendarView",
        params={"startDateTime": iso(nine) + "Z", "endDateTime": iso(nine + timedelta(hours=8)) + "Z"},
        headers=headers,
        timeout=5,
    ).json()["value"]
    assert [e["subject"] for e in view] == ["SEC-1 war room"]
    assert requests.get(f"{graph(sandbox)}/me/calendarView", headers=headers, timeout=5).json()["error"]["code"] == "ErrorInvalidParameter"
    assert requests.post(f"{graph(sandbox)}/me/events/{event['id']}/cancel", json={"comment": "resolved"}, headers=headers, timeout=5).status_code == 202
    assert requests.get(f"{graph(sandbox)}/me/events/{event['id']}", headers=headers, timeout=5).status_code == 404
    kinds = [c["kind"] for c in requests.get(f"{sandbox}/_control/created", params={"vendor": "microsoft365"}, timeout=5).json()]
    assert kinds == ["event", "cancellation"]


# ---- files and Excel
def legal_and_deals(sandbox: str, headers: dict[str, str]) -> tuple[dict, dict]:
    sites = requests.get(f"{graph(sandbox)}/sites", params={"search": "legal"}, headers=headers, timeout=5).json()["value"]
    legal = requests.get(f"{graph(sandbox)}/sites/{sites[0]['id']}/drives", headers=headers, timeout=5).json()["value"][0]
    deals_site = requests.get(f"{graph(sandbox)}/sites", params={"search": "Deals"}, headers=headers, timeout=5).json()["value"][0]
    deals = requests.get(f"{graph(sandbox)}/sites/{deals_site['id']}/drives", headers=headers, timeout=5).json()["value"][0]
    return legal, deals


def children(sandbox: str, headers: dict[str, str], drive_id: str, item_id: str = "root") -> dict[str, dict]:
    path = "root/children" if item_id == "root" else f"items/{item_id}/children"
    return {i["name"]: i for i in requests.get(f"{graph(sandbox)}/drives/{drive_id}/{path}", headers=headers, timeout=5).json()["value"]}


def test_copy_a_template_through_the_monitor_then_share_and_follow_drive_delta(sandbox):
    headers = app_token(sandbox)
    legal, _deals = legal_and_deals(sandbox, headers)
    root = children(sandbox, headers, legal["id"])
    template = children(sandbox, headers, legal["id"], root["Templates"]["id"])["Breach notification template.docx"]
    first = requests.get(f"{graph(sandbox)}/drives/{legal['id']}/root/delta", headers=headers, timeout=5).json()
    assert {i["name"] for i in first["value"]} >= {"Templates", "Breach notification template.docx"} and "@odata.deltaLink" in first
    folder = requests.post(
        f"{graph(sandbox)}/drives/{legal['id']}/items/{root['Incidents']['id']}/children", json={"name": "SEC-1", "folder": {}}, headers=headers, timeout=5
    ).json()
    requests.put(f"{sandbox}/_control/faults/microsoft365", json={}, timeout=5)
    requests.put(f"{sandbox}/microsoft365/_control/knobs", json={"copy_in_progress_polls": 1}, timeout=5)
    copied = requests.post(
        f"{graph(sandbox)}/drives/{legal['id']}/items/{template['id']}/copy",
        json={"parentReference": {"driveId": legal["id"], "id": folder["id"]}, "name": "SEC-1 breach notification.docx"},
        headers=headers,
        timeout=5,
    )
    assert copied.status_code == 202 and copied.content == b""
    monitor = copied.headers["Location"]
    assert requests.get(monitor, timeout=5).json()["status"] == "inProgress"  # the monitor URL needs no token
    done = requests.get(monitor, timeout=5).json()
    assert done["status"] == "completed" and done["percentageComplete"] == 100.0
    item = requests.get(f"{graph(sandbox)}/drives/{legal['id']}/items/{done['resourceId']}", headers=headers, timeout=5).json()
    assert item["name"] == "SEC-1 breach notification.docx" and item["parentReference"]["path"] == "/drive/root:/Incidents/SEC-1"
    again = requests.post(
        f"{graph(sandbox)}/drives/{legal['id']}/items/{template['id']}/copy",
        json={"parentReference": {"driveId": legal["id"], "id": folder["id"]}, "name": "SEC-1 breach notification.docx"},
        headers=headers,
        timeout=5,
    )
    requests.get(again.headers["Location"], timeout=5)
    failed = requests.get(again.headers["Location"], timeout=5).json()
    assert failed["status"] == "failed" and failed["error"]["code"] == "nameAlreadyExists"
    shared = requests.post(
        f"{graph(sandbox)}/drives/{legal['id']}/items/{item['id']}/invite",
        json={
            "recipients": [{"email": "priya.raman@acme.example"}, {"email": "counsel@outside-firm.example"}],
            "roles": ["write"],
            "requireSignIn": True,
            "sendInvitation": True,
        },
        headers=headers,
        timeout=5,
    ).json()["value"]
    assert [p["grantedTo"]["user"]["email"] for p in shared] == ["priya.raman@acme.example", "counsel@outside-firm.example"] and "invitation" in shared[1]
    link = requests.post(
        f"{graph(sandbox)}/drives/{legal['id']}/items/{item['id']}/createLink", json={"type": "view", "scope": "organization"}, headers=headers, timeout=5
    )
    assert link.status_code == 201 and link.json()["link"]["webUrl"].startswith("https://")
    later = requests.get(first["@odata.deltaLink"], headers=headers, timeout=5).json()
    assert {i["name"] for i in later["value"]} >= {"SEC-1", "SEC-1 breach notification.docx"} and "Templates" not in {i["name"] for i in later["value"]}
    kinds = {c["kind"] for c in requests.get(f"{sandbox}/_control/created", params={"vendor": "microsoft365"}, timeout=5).json()}
    assert {"folder", "copy", "share", "share_link"} <= kinds


def test_workbook_tables_ranges_and_names_of_the_deal_model(sandbox):
    headers = token(sandbox, "grace.obrien@acme.example")
    _legal, deals = legal_and_deals(sandbox, headers)
    model = children(sandbox, headers, deals["id"])["Project Falcon model.xlsx"]
    book = f"{graph(sandbox)}/drives/{deals['id']}/items/{model['id']}/workbook"
    assert [t["name"] for t in requests.get(f"{book}/tables", headers=headers, timeout=5).json()["value"]] == ["DealTerms", "Synergies"]
    rows = requests.get(f"{book}/tables/Synergies/rows", headers=headers, timeout=5).json()["value"]
    assert rows[0]["values"] == [["Procurement consolidation", "Cost", 42000000, 2028]] and len(rows) == 4
    cells = requests.get(f"{book}/worksheets/Model/range(address='A1:C4')", headers=headers, timeout=5).json()
    assert cells["address"] == "Model!A1:C4" and cells["values"][1][:2] == ["Deal value", 1250000000] and cells["text"][1][1] == "$1,250,000,000"
    names = {n["name"]: n["value"] for n in requests.get(f"{book}/names", headers=headers, timeout=5).json()["value"]}
    assert names == {"DealValue": "Model!$B$2", "CloseDate": "Model!$B$3", "SynergyTotal": "Synergies!$C$7"}
    close = requests.get(f"{book}/names/CloseDate/range()", headers=headers, timeout=5).json()
    assert close["numberFormat"] == [["yyyy-mm-dd"]] and close["text"] == [["2027-03-31"]] and close["values"] == [[46477]]
    total = requests.get(f"{book}/names/SynergyTotal/range()", headers=headers, timeout=5).json()
    assert total["values"] == [[140000000]] and total["formulas"] == [["=SUM(C2:C5)"]]
    added = requests.post(f"{book}/tables/DealTerms/rows/add", json={"values": [["Status", "Signed", "via Bastion"]]}, headers=headers, timeout=5)
    assert added.status_code == 201 and added.json()["index"] == 5
    assert len(requests.get(f"{book}/tables/DealTerms/rows", headers=headers, timeout=5).json()["value"]) == 6
    wrong = requests.post(f"{book}/tables/DealTerms/rows/add", json={"values": [["too", "short"]]}, headers=headers, timeout=5)
    assert wrong.status_code == 400 and wrong.json()["error"]["code"] == "InvalidArgument"
    assert requests.get(f"{book}/worksheets/Model/range(address='A1:ZZZZ9')", headers=headers, timeout=5).status_code == 400
    not_a_book = children(sandbox, headers, deals["id"])
    assert set(not_a_book) == {"Project Falcon model.xlsx"}


# ---- batching, paging and throttling
def test_batch_dependencies_per_request_status_and_the_twenty_request_limit(sandbox):
    headers = token(sandbox)
    tid = team_id(sandbox, headers)
    batch = {
        "requests": [
            {"id": "1", "method": "POST", "url": f"/teams/{tid}/channels", "headers": {"Content-Type": "application/json"}, "body": {"displayName": "sec-2"}},
            {"id": "2", "method": "GET", "url": "/users/nobody@acme.example", "dependsOn": ["1"]},
            {"id": "3", "method": "GET", "url": "/me", "dependsOn": ["2"]},
            {"id": "4", "method": "GET", "url": "/users?$top=2&$select=mail", "dependsOn": ["1"]},
        ]
    }
    answer = requests.post(f"{graph(sandbox)}/$batch", json=batch, headers=headers, timeout=10)
    assert answer.status_code == 200
    by_id = {r["id"]: r for r in answer.json()["responses"]}
    assert by_id["1"]["status"] == 201 and by_id["1"]["body"]["displayName"] == "sec-2"
    assert by_id["2"]["status"] == 404 and by_id["2"]["body"]["error"]["code"] == "Request_ResourceNotFound"
    assert by_id["3"]["status"] == 424  # its dependency failed
    assert by_id["4"]["status"] == 200 and by_id["4"]["body"]["@odata.nextLink"].startswith(f"{sandbox}/microsoft365/v1.0/users?")
    too_many = {"requests": [{"id": str(n), "method": "GET", "url": "/me"} for n in range(21)]}
    refused = requests.post(f"{graph(sandbox)}/$batch", json=too_many, headers=headers, timeout=10)
    assert refused.status_code == 400 and "20" in refused.json()["error"]["message"]
    no_type = {"requests": [{"id": "1", "method": "POST", "url": f"/teams/{tid}/channels", "body": {"displayName": "x"}}]}
    assert requests.post(f"{graph(sandbox)}/$batch", json=no_type, headers=headers, timeout=10).json()["responses"][0]["status"] == 400


def test_throttling_answers_429_with_retry_after_in_the_graph_envelope_also_inside_a_batch(sandbox):
    headers = token(sandbox)
    requests.put(f"{sandbox}/_control/faults/microsoft365", json={"rate_limit_next": 2, "retry_after": 7}, timeout=5)
    throttled = requests.get(f"{graph(sandbox)}/me", headers=headers, timeout=5)
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "7" and throttled.json()["error"]["code"] == "TooManyRequests"
    batch = {"requests": [{"id": "a", "method": "GET", "url": "/me"}, {"id": "b", "method": "GET", "url": "/users/priya.raman@acme.example"}]}
    requests.put(f"{sandbox}/_control/faults/microsoft365", json={"rate_limit_next": 1}, timeout=5)
    by_id = {r["id"]: r for r in requests.post(f"{graph(sandbox)}/$batch", json=batch, headers=headers, timeout=10).json()["responses"]}
    assert by_id["a"]["status"] == 429 and by_id["a"]["headers"]["Retry-After"] == "7" and by_id["b"]["status"] == 200
    assert requests.get(f"{graph(sandbox)}/me", headers=headers, timeout=5).status_code == 200
    requests.put(f"{sandbox}/_control/faults/microsoft365", json={"revoked": True}, timeout=5)
    revoked = requests.get(f"{graph(sandbox)}/me", headers=headers, timeout=5)
    assert revoked.status_code == 401 and revoked.json()["error"]["code"] == "InvalidAuthenticationToken"


def test_requests_are_checked_against_graphs_published_description():
    def problems(method: str, path: str, body=None, query=None, status: int = 200) -> list[str]:
        return check_exchange(
            "microsoft365",
            method=method,
            path=path,
            query=query or {},
            headers={},
            form={},
            body=body,
            status=status,
            content_type="application/json",
            answer=None,
        )

    base = "/microsoft365/v1.0"
    assert problems("POST", f"{base}/teams/t1/channels", {"displayName": 5}) == ["request: displayName: 5 is not of type 'string'"]
    assert problems("POST", f"{base}/me/events", {"subject": "x", "isOnlineMeeting": True}) == []  # /me is /users/{id}
    assert problems("POST", f"{base}/drives/d/items/i/copy", {"parentReference": {"id": "p"}}) == []  # the unprefixed action name
    assert problems("POST", f"{base}/drives/d/items/i/workbook/tables/T/rows/add", {"values": [[1]]}) == []  # from the SDK URL inventory
    assert problems("POST", f"{base}/drives/d/items/i/workbook/tables/T/rows/add", {"values": [[1]], "index": "last"}) == [
        "request: index: 'last' is not of type 'integer', 'null'"
    ]  # the action's body from the CSDL
    assert problems("POST", f"{base}/drives/d/items/i/workbook/createSession", {}) == ["request: (body): 'persistChanges' is a required property"]
    assert sorted(problems("GET", f"{base}/users/u/calendarView/delta")) == [
        "request: required query parameter 'endDateTime' is missing",
        "request: required query parameter 'startDateTime' is missing",
    ]
    assert problems("GET", f"{base}/teams/t/tags") == ["request: /teams/t/tags is not a path in the spec, yet the stand-in answered 200"]
    assert problems("PUT", f"{base}/subscriptions/s1") == ["request: PUT is not an operation on /subscriptions/s1, yet the stand-in answered 200"]
    assert problems("POST", "/microsoft365/common/oauth2/v2.0/token") == [] and problems("POST", f"{base}/$batch") == []


# ---- change notifications
class Receiver:
    """A notification endpoint on loopback: echoes validationToken (unless told not to) and keeps what Graph posts."""

    def __init__(self, echo: bool = True, delay: float = 0.0):
        self.received: list[dict] = []
        self.echo, self.delay = echo, delay
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                query = parse_qs(urlsplit(self.path).query)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if "validationToken" in query:
                    time.sleep(owner.delay)
                    answer = (query["validationToken"][0] if owner.echo else "nope").encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "text/plain")
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                    return
                owner.received.append({"path": unquote(self.path), **json.loads(body or b"{}")})
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def close(self):
        self.server.shutdown()


@pytest.fixture
def receiver():
    endpoint = Receiver()
    yield endpoint
    endpoint.close()


def subscribe(sandbox: str, headers: dict[str, str], url: str, resource: str, minutes: int = 50, **extra):
    body = {
        "changeType": "created,updated,deleted",
        "notificationUrl": f"{url}/notify",
        "resource": resource,
        "expirationDateTime": (datetime.now(UTC) + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "clientState": "bastion-secret",
        **extra,
    }
    return requests.post(f"{graph(sandbox)}/subscriptions", json=body, headers=headers, timeout=15)


def test_the_handshake_is_refused_when_the_token_is_not_echoed(sandbox):
    headers = token(sandbox)
    silent = Receiver(echo=False)
    try:
        refused = subscribe(sandbox, headers, silent.url, "/me/events")
    finally:
        silent.close()
    assert refused.status_code == 400 and "did not exactly match the validationToken" in refused.json()["error"]["message"]
    missing = subscribe(sandbox, headers, "http://127.0.0.1:9", "/me/events")
    assert missing.status_code == 400 and "did not answer" in missing.json()["error"]["message"]
    not_https = subscribe(sandbox, headers, "http://bastion.example.com", "/me/events")
    assert not_https.status_code == 400 and "https" in not_https.json()["error"]["message"]
    assert requests.get(f"{graph(sandbox)}/subscriptions", headers=headers, timeout=5).json()["value"] == []


def test_subscription_lifetimes_per_resource(sandbox, receiver):
    headers = token(sandbox)
    tid = team_id(sandbox, headers)
    general = requests.get(f"{graph(sandbox)}/teams/{tid}/channels", headers=headers, timeout=5).json()["value"][0]["id"]
    messages = f"/teams/{tid}/channels/{general}/messages"
    too_long = subscribe(sandbox, headers, receiver.url, "/me/events", minutes=4300)
    assert too_long.status_code == 400 and "4230 minutes" in too_long.json()["error"]["message"]
    needs_lifecycle = subscribe(sandbox, headers, receiver.url, messages, minutes=120)
    assert needs_lifecycle.status_code == 400 and "lifecycleNotificationUrl is a required property" in needs_lifecycle.json()["error"]["message"]
    ok = subscribe(sandbox, headers, receiver.url, messages, minutes=120, lifecycleNotificationUrl=f"{receiver.url}/lifecycle")
    assert ok.status_code == 201, ok.text
    short = subscribe(sandbox, headers, receiver.url, "/me/events", minutes=5).json()
    floor = datetime.fromisoformat(short["expirationDateTime"].replace("Z", "+00:00")) - datetime.now(UTC)
    assert timedelta(minutes=44) < floor <= timedelta(minutes=45)  # raised to Graph's 45-minute floor
    legal, _deals = legal_and_deals(sandbox, headers)
    drive = subscribe(sandbox, headers, receiver.url, f"/drives/{legal['id']}/root")
    assert drive.status_code == 400 and "'updated' only" in drive.json()["error"]["message"]
    long_state = subscribe(sandbox, headers, receiver.url, "/me/events", clientState="x" * 129)
    assert long_state.status_code == 400


def test_change_and_lifecycle_notifications_reach_the_endpoint(sandbox, receiver):
    headers = token(sandbox)
    tid = team_id(sandbox, headers)
    general = requests.get(f"{graph(sandbox)}/teams/{tid}/channels", headers=headers, timeout=5).json()["value"][0]["id"]
    events = subscribe(sandbox, headers, receiver.url, "/me/events", lifecycleNotificationUrl=f"{receiver.url}/lifecycle").json()
    chat = subscribe(sandbox, headers, receiver.url, f"/teams/{tid}/channels/{general}/messages").json()
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    event = requests.post(
        f"{graph(sandbox)}/me/events",
        json={
            "subject": "Bridge",
            "start": {"dateTime": iso(start), "timeZone": "UTC"},
            "end": {"dateTime": iso(start + timedelta(hours=1)), "timeZone": "UTC"},
        },
        headers=headers,
        timeout=5,
    ).json()
    requests.post(f"{sandbox}/microsoft365/_control/channels/{general}/messages", json={"from": "emma.rossi@acme.example", "text": "on it"}, timeout=5)
    wait_for(lambda: len(receiver.received) >= 2, timeout=10, message="two change notifications")
    by_subscription = {n["value"][0]["subscriptionId"]: n["value"][0] for n in receiver.received}
    created = by_subscription[events["id"]]
    assert created["changeType"] == "created" and created["clientState"] == "bastion-secret" and created["resourceData"]["id"] == event["id"]
    assert created["tenantId"] == TENANT and created["subscriptionExpirationDateTime"] == events["expirationDateTime"]
    assert by_subscription[chat["id"]]["resource"].startswith(f"teams('{tid}')/channels('{general}')/messages(")
    lifecycle = requests.post(f"{sandbox}/microsoft365/_control/subscriptions/{events['id']}/lifecycle", json={"event": "subscriptionRemoved"}, timeout=5)
    assert lifecycle.status_code == 202
    wait_for(lambda: any(n["path"] == "/lifecycle" for n in receiver.received), timeout=10, message="the lifecycle notification")
    notice = next(n for n in receiver.received if n["path"] == "/lifecycle")["value"][0]
    assert notice["lifecycleEvent"] == "subscriptionRemoved" and notice["subscriptionId"] == events["id"]
    assert requests.get(f"{graph(sandbox)}/subscriptions/{events['id']}", headers=headers, timeout=5).status_code == 404
    no_url = requests.post(f"{sandbox}/microsoft365/_control/subscriptions/{chat['id']}/lifecycle", json={"event": "missed"}, timeout=5)
    assert no_url.status_code == 400
    renewed = requests.patch(
        f"{graph(sandbox)}/subscriptions/{chat['id']}",
        json={"expirationDateTime": (datetime.now(UTC) + timedelta(minutes=55)).strftime("%Y-%m-%dT%H:%M:%SZ")},
        headers=headers,
        timeout=15,
    )
    assert renewed.status_code == 200 and renewed.json()["expirationDateTime"] != chat["expirationDateTime"]
    requests.post(f"{sandbox}/microsoft365/_control/subscriptions/{chat['id']}/expire", timeout=5)
    lapsed = requests.patch(
        f"{graph(sandbox)}/subscriptions/{chat['id']}", json={"expirationDateTime": renewed.json()["expirationDateTime"]}, headers=headers, timeout=5
    )
    assert lapsed.status_code == 404  # an expired subscription cannot be renewed, only recreated
    assert requests.delete(f"{graph(sandbox)}/subscriptions/{chat['id']}", headers=headers, timeout=5).status_code == 404


def test_event_and_message_delta_rounds(sandbox):
    headers = token(sandbox)
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    window = {"startDateTime": iso(start - timedelta(days=1)) + "Z", "endDateTime": iso(start + timedelta(days=1)) + "Z"}
    first = requests.get(f"{graph(sandbox)}/me/calendarView/delta", params=window, headers=headers, timeout=5).json()
    assert first["value"] == [] and first["@odata.deltaLink"].startswith(f"{sandbox}/microsoft365/v1.0/me/calendarView/delta?")
    made = requests.post(
        f"{graph(sandbox)}/me/events",
        json={
            "subject": "Delta",
            "start": {"dateTime": iso(start), "timeZone": "UTC"},
            "end": {"dateTime": iso(start + timedelta(hours=1)), "timeZone": "UTC"},
        },
        headers=headers,
        timeout=5,
    ).json()
    second = requests.get(first["@odata.deltaLink"], headers=headers, timeout=5).json()
    assert [e["subject"] for e in second["value"]] == ["Delta"]
    requests.delete(f"{graph(sandbox)}/me/events/{made['id']}", headers=headers, timeout=5)
    third = requests.get(second["@odata.deltaLink"], headers=headers, timeout=5).json()
    assert third["value"] == [{"id": made["id"], "@removed": {"reason": "deleted"}}]
    stale = requests.get(f"{graph(sandbox)}/me/events/delta", params={"$deltatoken": "garbage"}, headers=headers, timeout=5)
    assert stale.status_code == 410
    tid = team_id(sandbox, headers)
    general = requests.get(f"{graph(sandbox)}/teams/{tid}/channels", headers=headers, timeout=5).json()["value"][0]["id"]
    url = f"{graph(sandbox)}/teams/{tid}/channels/{general}/messages"
    for n in range(3):
        requests.post(url, json={"body": {"contentType": "text", "content": f"update {n}"}}, headers=headers, timeout=5)
    pages, link, seen = 0, f"{url}/delta?$top=2", []
    while True:
        body = requests.get(link, headers=headers, timeout=5).json()
        seen += [m["body"]["content"] for m in body["value"]]
        pages += 1
        if "@odata.deltaLink" in body:
            break
        link = body["@odata.nextLink"]
    assert pages == 2 and seen == ["update 0", "update 1", "update 2"]


def claims(access_token: str) -> dict:
    payload = access_token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_tokens_carry_entra_claims_and_the_generic_oauth_layout_leads_to_the_entra_page(sandbox):
    app = claims(app_token(sandbox)["Authorization"][7:])
    assert app["tid"] == TENANT and "Files.ReadWrite.All" in app["roles"] and "scp" not in app
    verifier, challenge = pkce()
    code = sign_in(sandbox, "https://graph.microsoft.com/Files.Read", (verifier, challenge))
    form = {
        "grant_type": "authorization_code",
        "client_id": "bastion-app",
        "code": code,
        "redirect_uri": "http://127.0.0.1:9/callback",
        "code_verifier": verifier,
    }
    granted = requests.post(f"{sandbox}/microsoft365/oauth/token", data=form, timeout=5).json()
    delegated = claims(granted["access_token"])
    assert delegated["scp"] == "Files.Read" and delegated["upn"] == "amara.nwosu@acme.example" and "refresh_token" not in granted  # no offline_access
    alias = requests.get(f"{sandbox}/microsoft365/oauth/authorize", params={"client_id": "x", "scope": "Files.Read"}, allow_redirects=False, timeout=5)
    assert alias.status_code == 302 and alias.headers["Location"].startswith("/microsoft365/organizations/oauth2/v2.0/authorize?client_id=x")


def test_drive_changes_notify_the_drive_root_without_item_ids(sandbox, receiver):
    headers = app_token(sandbox)
    legal, _deals = legal_and_deals(sandbox, headers)
    subscription = subscribe(sandbox, headers, receiver.url, f"/drives/{legal['id']}/root", changeType="updated").json()
    incidents = children(sandbox, headers, legal["id"])["Incidents"]
    requests.post(f"{graph(sandbox)}/drives/{legal['id']}/items/{incidents['id']}/children", json={"name": "SEC-9", "folder": {}}, headers=headers, timeout=5)
    wait_for(lambda: receiver.received, timeout=10, message="a drive notification")
    item = receiver.received[0]["value"][0]
    assert item["subscriptionId"] == subscription["id"] and item["resource"] == f"drives/{legal['id']}/root" and "resourceData" not in item
    sent = requests.get(f"{sandbox}/microsoft365/_control/deliveries", params={"subscription_id": subscription["id"]}, timeout=5).json()
    assert [d["status"] for d in sent] == [202]


def test_a_create_whose_answer_is_lost_is_found_again_by_transaction_id(sandbox):
    headers = token(sandbox)
    knob = requests.put(f"{sandbox}/microsoft365/_control/knobs", json={"fail_after_create": {"count": 1, "status": 504}}, timeout=5)
    assert knob.status_code == 200
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=5)
    body = {
        "subject": "Retry me",
        "start": {"dateTime": iso(start), "timeZone": "UTC"},
        "end": {"dateTime": iso(start + timedelta(hours=1)), "timeZone": "UTC"},
        "transactionId": "run-1:event",
    }
    lost = requests.post(f"{graph(sandbox)}/me/events", json=body, headers=headers, timeout=5)
    assert lost.status_code == 504 and lost.json()["error"]["code"] == "GatewayTimeout"
    again = requests.post(f"{graph(sandbox)}/me/events", json=body, headers=headers, timeout=5)
    assert again.status_code == 201
    listed = requests.get(f"{graph(sandbox)}/me/events", headers=headers, timeout=5).json()["value"]
    assert [e["id"] for e in listed if e["subject"] == "Retry me"] == [again.json()["id"]]
    assert requests.put(f"{sandbox}/microsoft365/_control/knobs", json={"fail_after_create": 3}, timeout=5).status_code == 400


def test_malformed_bodies_are_graph_400s_never_500s(sandbox):
    headers = token(sandbox)
    tid = team_id(sandbox, headers)
    legal, _deals = legal_and_deals(sandbox, headers)
    template = children(sandbox, headers, legal["id"])["Templates"]["id"]
    when = {"dateTime": "2030-01-07T15:00:00", "timeZone": "UTC"}
    cases = [
        ("/me/events", {"start": {"dateTime": "2030-01-07T15:00:00", "timeZone": 5}, "end": when}),
        ("/me/events", {"start": when, "end": when, "attendees": [{"emailAddress": "x@y.example"}]}),
        ("/me/events", {"start": when, "end": when, "body": "plain text"}),
        ("/me/events", {"start": when, "end": when, "showAs": "maybe"}),
        ("/me/calendar/getSchedule", {"Schedules": "x", "StartTime": when, "EndTime": when}),
        ("/me/findMeetingTimes", {"attendees": 5}),
        ("/me/findMeetingTimes", {"timeConstraint": {"timeSlots": True}}),
        (f"/teams/{tid}/channels", {"displayName": "x", "membershipType": "private", "members": [{"roles": []}]}),
        (f"/teams/{tid}/members", {"@odata.type": "#microsoft.graph.aadUserConversationMember", "user@odata.bind": 5}),
        (f"/drives/{legal['id']}/items/{template}/invite", {"recipients": [{"email": 5}], "roles": ["read"]}),
        (f"/drives/{legal['id']}/items/{template}/copy", {"parentReference": "root"}),
        ("/subscriptions", {"changeType": "created", "notificationUrl": 5, "resource": "/me/events", "expirationDateTime": 5}),
        ("/$batch", {"requests": [{"id": "1", "method": "GET", "url": "/me", "headers": "x"}]}),
        ("/$batch", [1, 2]),
        (f"/teams/{tid}/channels", {"displayName": 5}),  # refused by the published description before the handler
        ("/me/events", {"start": when, "end": when, "subject": ["x"]}),
    ]
    for path, body in cases:
        answer = requests.post(f"{graph(sandbox)}{path}", json=body, headers=headers, timeout=10)
        assert answer.status_code == 400 and answer.json()["error"]["message"], (path, body, answer.status_code, answer.text[:200])


def test_times_come_back_in_utc_unless_the_client_prefers_a_zone(sandbox):
    headers = token(sandbox)
    body = {
        "subject": "Zoned",
        "start": {"dateTime": "2030-01-07T09:00:00", "timeZone": "Pacific Standard Time"},
        "end": {"dateTime": "2030-01-07T10:00:00", "timeZone": "Pacific Standard Time"},
    }
    event = requests.post(f"{graph(sandbox)}/me/events", json=body, headers=headers, timeout=5).json()
    assert event["start"] == {"dateTime": "2030-01-07T17:00:00.0000000", "timeZone": "UTC"} and event["originalStartTimeZone"] == "Pacific Standard Time"
    prefer = {**headers, "Prefer": 'outlook.timezone="Europe/Paris"'}
    local = requests.get(f"{graph(sandbox)}/me/events/{event['id']}", headers=prefer, timeout=5).json()
    assert local["start"] == {"dateTime": "2030-01-07T18:00:00.0000000", "timeZone": "Europe/Paris"}
