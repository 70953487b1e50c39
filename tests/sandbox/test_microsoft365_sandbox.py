"""The Microsoft 365 stand-in over real HTTP: Entra sign-in, Graph teams/channels/messages, calendar, files, Excel, batching, subscriptions."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

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
    assert page.status_code == 200 and "Authorize Bastion" in page.text and "ChannelMessage.Send" in page.text and 'id="allow"' in page.text
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
    assert "serialized as a string" in requests.post(url, json=as_object, headers=delegated, timeout=5).json()["error"]["message"]
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
