"""The tenant the stand-in starts with: a response team, rooms, a Legal site with templates and a Deals site with the deal model."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

from sandbox.vendors.microsoft365.common import TENANT_ID, bump, col, find_user, iso, now

TEAM_NAME = "Bastion Incident Response"
TEAM_MEMBERS = [  # (email, owner?) — the standing response team; other staff join per incident
    ("amara.nwosu@acme.example", True),
    ("marcus.okafor@acme.example", True),
    ("emma.rossi@acme.example", False),
    ("noah.fischer@acme.example", False),
    ("yuki.tanaka@acme.example", False),
    ("sofia.garcia@acme.example", False),
    ("priya.raman@acme.example", False),
    ("liam.novak@acme.example", False),
]
ROOMS = [
    ("War Room (HQ 3rd floor)", "warroom@acme.example", 12, "HQ"),
    ("Boardroom", "boardroom@acme.example", 20, "HQ"),
    ("Crisis Center", "crisiscenter@acme.example", 8, "Annex"),
]
EXCEL = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
WORD = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def stable_id(kind: str, name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"microsoft365:{kind}:{name}"))


def excel_serial(day: date) -> int:
    """Excel stores dates as days since 1899-12-30."""
    return (day - date(1899, 12, 30)).days


def membership(team_id: str, user: dict[str, Any], roles: list[str]) -> dict[str, Any]:
    return {
        "@odata.type": "#microsoft.graph.aadUserConversationMember",
        "id": f"MCMj{stable_id('member', team_id + user['id'])[:20]}",
        "roles": roles,
        "displayName": user["displayName"],
        "userId": user["id"],
        "email": user["mail"],
        "tenantId": TENANT_ID,
        "visibleHistoryStartDateTime": "0001-01-01T00:00:00Z",
    }


def seed() -> None:
    _seed_team()
    _seed_rooms()
    _seed_busy_blocks()
    legal = _site("Legal", "Legal and compliance documents")
    templates = add_item(legal["_drive"], legal["_root"], "Templates", folder=True)
    add_item(legal["_drive"], templates["id"], "Breach notification template.docx", mime=WORD, size=48_213)
    add_item(legal["_drive"], templates["id"], "Press holding statement.docx", mime=WORD, size=31_877)
    add_item(legal["_drive"], legal["_root"], "Incidents", folder=True)
    deals = _site("Deals", "Corporate development: live deals")
    model = add_item(deals["_drive"], deals["_root"], "Project Falcon model.xlsx", mime=EXCEL, size=184_320)
    from sandbox.vendors.microsoft365.workbook import seed_workbook

    seed_workbook(model["id"], close_date=excel_serial(date(2027, 3, 31)))


def _seed_team() -> None:
    team_id = stable_id("team", TEAM_NAME)
    members = []
    for email, owner in TEAM_MEMBERS:
        user = find_user(email)
        if user is not None:
            members.append(membership(team_id, user, ["owner"] if owner else []))
    team = {
        "id": team_id,
        "displayName": TEAM_NAME,
        "description": "Standing crisis and security incident response team",
        "visibility": "private",
        "createdDateTime": "2024-02-01T09:00:00Z",
        "isArchived": False,
        "webUrl": f"https://teams.microsoft.com/l/team/19%3a{team_id[:8]}%40thread.tacv2/conversations?groupId={team_id}&tenantId={TENANT_ID}",
        "tenantId": TENANT_ID,
        "_members": members,
    }
    col("teams")[team_id] = bump(team)
    general_id = f"19:{team_id.replace('-', '')[:32]}@thread.tacv2"
    col("channels")[general_id] = bump(
        {
            "id": general_id,
            "displayName": "General",
            "description": TEAM_NAME,
            "membershipType": "standard",
            "isFavoriteByDefault": True,
            "createdDateTime": "2024-02-01T09:00:00Z",
            "email": "",
            "webUrl": f"https://teams.microsoft.com/l/channel/{general_id}/General?groupId={team_id}&tenantId={TENANT_ID}",
            "tenantId": TENANT_ID,
            "isArchived": False,
            "_team": team_id,
            "_members": [],
            "_general": True,
        }
    )


def _seed_rooms() -> None:
    for name, email, capacity, building in ROOMS:
        room_id = stable_id("room", email)
        col("rooms")[room_id] = {
            "@odata.type": "#microsoft.graph.room",
            "id": room_id,
            "displayName": name,
            "emailAddress": email,
            "capacity": capacity,
            "building": building,
            "floorNumber": 3,
            "bookingType": "standard",
            "isWheelChairAccessible": True,
            "phone": None,
            "nickname": name,
            "tags": [],
            "address": {"street": "1 Acme Way", "city": "Springfield", "state": "IL", "countryOrRegion": "US", "postalCode": "62701"},
        }


def _seed_busy_blocks() -> None:
    """The next working day 09:00-11:00 UTC the General Counsel and the Boardroom are busy: getSchedule and findMeetingTimes have something to avoid."""
    from sandbox.vendors.microsoft365.calendar import make_event

    tomorrow = now().replace(hour=9, minute=0, second=0) + timedelta(days=1)
    while tomorrow.weekday() >= 5:
        tomorrow += timedelta(days=1)
    organizer = find_user("priya.raman@acme.example")
    if organizer is None:
        return
    body = {
        "subject": "Board litigation review",
        "start": {"dateTime": tomorrow.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
        "end": {"dateTime": (tomorrow + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
        "attendees": [{"type": "resource", "emailAddress": {"address": "boardroom@acme.example", "name": "Boardroom"}}],
        "location": {"displayName": "Boardroom"},
    }
    event = make_event(organizer, body)
    col("events")[event["id"]] = event


def _site(name: str, description: str) -> dict[str, Any]:
    site_id = f"acme.sharepoint.com,{stable_id('site', name)},{stable_id('web', name)}"
    drive_id = "b!" + stable_id("drive", name).replace("-", "")
    root_id = "01" + stable_id("root", name).replace("-", "")[:32].upper()
    web = f"https://acme.sharepoint.com/sites/{name}"
    site = {
        "id": site_id,
        "name": name,
        "displayName": name,
        "description": description,
        "webUrl": web,
        "createdDateTime": "2024-01-20T10:00:00Z",
        "siteCollection": {"hostname": "acme.sharepoint.com"},
        "_drive": drive_id,
        "_root": root_id,
    }
    col("sites")[site_id] = bump(site)
    col("drives")[drive_id] = {
        "id": drive_id,
        "name": "Documents",
        "description": "",
        "driveType": "documentLibrary",
        "webUrl": f"{web}/Shared%20Documents",
        "createdDateTime": "2024-01-20T10:00:00Z",
        "owner": {"group": {"id": stable_id("group", name), "displayName": name}},
        "quota": {"total": 27487790694400, "used": 0, "remaining": 27487790694400, "state": "normal"},
        "_site": site_id,
        "_root": root_id,
    }
    col("items")[root_id] = bump(
        {
            "id": root_id,
            "name": "root",
            "root": {},
            "folder": {"childCount": 0},
            "size": 0,
            "webUrl": f"{web}/Shared%20Documents",
            "createdDateTime": "2024-01-20T10:00:00Z",
            "parentReference": {"driveId": drive_id, "driveType": "documentLibrary", "siteId": site_id},
            "_drive": drive_id,
            "_parent": None,
        }
    )
    return site


def item_path(item: dict[str, Any]) -> str:
    """The item's folder path as Graph writes it in parentReference.path: /drive/root:/Templates."""
    names = []
    parent = col("items").get(item.get("_parent") or "")
    while parent is not None and parent.get("_parent"):
        names.append(parent["name"])
        parent = col("items").get(parent["_parent"])
    return "/drive/root:" + ("/" + "/".join(reversed(names)) if names else "")


def add_item(
    drive_id: str, parent_id: str, name: str, *, folder: bool = False, mime: str = "", size: int = 0, creator: str = "Sandbox admin"
) -> dict[str, Any]:
    drive = col("drives")[drive_id]
    item_id = "01" + uuid.uuid4().hex[:32].upper()
    parent = col("items")[parent_id]
    item: dict[str, Any] = {
        "id": item_id,
        "name": name,
        "size": size,
        "createdDateTime": iso(now()),
        "eTag": f'"{{{item_id[2:10]}}},1"',
        "cTag": f'"c:{{{item_id[2:10]}}},1"',
        "webUrl": f"{parent['webUrl']}/{name.replace(' ', '%20')}",
        "createdBy": {"user": {"displayName": creator}},
        "parentReference": {"driveId": drive_id, "driveType": "documentLibrary", "id": parent_id, "siteId": drive["_site"]},
        "_drive": drive_id,
        "_parent": parent_id,
        "_permissions": [],
    }
    if folder:
        item["folder"] = {"childCount": 0}
    else:
        item["file"] = {"mimeType": mime or "application/octet-stream", "hashes": {"quickXorHash": uuid.uuid4().hex[:27] + "="}}
    item["parentReference"]["path"] = item_path(item)
    col("items")[item_id] = bump(item)
    if "folder" in parent:
        parent["folder"]["childCount"] = parent["folder"].get("childCount", 0) + 1
    return item
