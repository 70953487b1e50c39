"""Graph users, groups, teams, channels, members, channel messages (Adaptive Cards) and online meetings."""

from __future__ import annotations

import json
import re
import time
from typing import Any

from flask import Blueprint, Response, jsonify, request

from sandbox.state import STORE
from sandbox.vendors.microsoft365.common import (
    DIRECTORY,
    GRAPH,
    TENANT_ID,
    VENDOR,
    bad_request,
    bump,
    caller_user,
    col,
    delegated,
    delta_answer,
    failure_after_create,
    find_user,
    graph_error,
    identity,
    iso,
    json_body,
    new_id,
    now,
    paged,
    public_user,
    require_scope,
    resolve_user,
    select,
    users,
)
from sandbox.vendors.microsoft365.seed import membership
from sandbox.vendors.microsoft365.subscriptions import notify

CHANNEL_FORBIDDEN = re.compile(r"[~#%&*{}+/\\:<>?|'\",]|\.\.")
CARD = "application/vnd.microsoft.card.adaptive"
ATTACHMENT_KEYS = {"id", "contentType", "content", "contentUrl", "name", "thumbnailUrl", "teamsAppId"}
BIND = re.compile(r"users(?:\('([^']+)'\)|/([^/?]+))$")
READ_DIRECTORY = ("User.ReadBasic.All", "User.Read.All", "Directory.Read.All", "User.ReadWrite.All")
READ_TEAMS = ("Team.ReadBasic.All", "TeamSettings.Read.All", "Group.Read.All", "Directory.Read.All", "Group.ReadWrite.All")
READ_CHANNELS = ("Channel.ReadBasic.All", "ChannelSettings.Read.All", "Group.Read.All", "Directory.Read.All", "Channel.Create")


def _user_filter(raw: str) -> tuple[list[dict[str, Any]] | None, str]:
    """`mail eq '…'`, `userPrincipalName eq '…'`, `startswith(displayName,'…')`, `mail in ('…','…')`, joined with `or`."""
    clauses = [c.strip() for c in re.split(r"\s+or\s+", raw, flags=re.I) if c.strip()]
    tests: list[tuple[str, str, set[str]]] = []  # (operator, field, lower-cased values)
    for clause in clauses:
        if m := re.fullmatch(r"(\w+)\s+eq\s+'((?:[^']|'')*)'", clause, re.I):
            tests.append(("eq", m[1], {m[2].replace("''", "'").lower()}))
        elif m := re.fullmatch(r"startswith\((\w+)\s*,\s*'((?:[^']|'')*)'\)", clause, re.I):
            tests.append(("startswith", m[1], {m[2].replace("''", "'").lower()}))
        elif m := re.fullmatch(r"(\w+)\s+in\s+\(([^)]*)\)", clause, re.I):
            tests.append(("eq", m[1], {v.strip().strip("'").lower() for v in m[2].split(",")}))
        else:
            return None, f"Unsupported or invalid query filter clause specified: '{clause}'."

    def passes(user: dict[str, Any]) -> bool:
        for operator, field, values in tests:
            actual = str(user.get(field) or "").lower()
            if (operator == "eq" and actual in values) or (operator == "startswith" and any(actual.startswith(v) for v in values)):
                return True
        return False

    with STORE.lock:
        return [u for u in users().values() if not u.get("_deleted") and passes(u)], ""


def _team_or_404(team_id: str) -> tuple[dict[str, Any] | None, Response | None]:
    team = col("teams").get(team_id)
    if team is None or team.get("_deleted"):
        return None, graph_error(404, "NotFound", f"No team found with Group Id {team_id}")
    return team, None


def _channel_or_404(team_id: str, channel_id: str) -> tuple[dict[str, Any] | None, dict[str, Any] | None, Response | None]:
    team, error = _team_or_404(team_id)
    if error:
        return None, None, error
    channel = col("channels").get(channel_id)
    if channel is None or channel["_team"] != team_id or channel.get("_deleted"):
        return None, None, graph_error(404, "NotFound", f"Channel {channel_id} not found in team {team_id}.")
    return team, channel, None


def public(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if not k.startswith("_")}


def _public_team(team: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in public(team).items() if k != "lastModifiedDateTime"}


def _public_channel(channel: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in public(channel).items() if k != "lastModifiedDateTime"}


def _team_group(team: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": team["id"],
        "displayName": team["displayName"],
        "description": team["description"],
        "mail": f"{re.sub(r'[^A-Za-z0-9]', '', team['displayName'])}@acme.example",
        "mailEnabled": True,
        "mailNickname": re.sub(r"[^A-Za-z0-9]", "", team["displayName"]),
        "securityEnabled": False,
        "groupTypes": ["Unified"],
        "resourceProvisioningOptions": ["Team"],
        "visibility": team.get("visibility", "private"),
        "createdDateTime": team["createdDateTime"],
    }


def _is_member(team: dict[str, Any], user: dict[str, Any] | None) -> bool:
    return user is not None and any(m["userId"] == user["id"] for m in team["_members"])


def _bound_user(body: dict[str, Any]) -> tuple[dict[str, Any] | None, Response | None]:
    """The user an aadUserConversationMember names through `user@odata.bind` (…/users('id-or-upn'))."""
    if body.get("@odata.type") != "#microsoft.graph.aadUserConversationMember":
        return None, bad_request("Invalid @odata.type: expected '#microsoft.graph.aadUserConversationMember'.")
    match = BIND.search(str(body.get("user@odata.bind") or ""))
    if not match:
        return None, bad_request("Invalid or missing 'user@odata.bind': expected https://graph.microsoft.com/v1.0/users('{id}').")
    roles = body.get("roles", [])
    if not isinstance(roles, list) or any(r not in ("owner", "guest") for r in roles):
        return None, bad_request("roles must be a list containing only 'owner' or 'guest'.")
    user = find_user(match[1] or match[2])
    if user is None:
        return None, graph_error(404, "NotFound", f"User {match[1] or match[2]} was not found in the directory.")
    return user, None


def _check_card(attachment: dict[str, Any], html: str) -> str:
    """Why an Adaptive Card attachment is malformed, or '' when it is well-formed and the body references it."""
    if unknown := set(attachment) - ATTACHMENT_KEYS:
        return f"Attachment has unknown properties: {sorted(unknown)}."
    if not attachment.get("id"):
        return "Attachment id is required."
    if attachment.get("contentType") != CARD:
        return ""
    if attachment.get("contentUrl"):
        return "contentUrl must be null for an Adaptive Card attachment."
    content = attachment.get("content")
    if not isinstance(content, str):
        return "Adaptive Card attachment content must be the card JSON serialized as a string."
    try:
        card = json.loads(content)
    except ValueError:
        return "Adaptive Card attachment content is not valid JSON."
    if not isinstance(card, dict) or card.get("type") != "AdaptiveCard" or not isinstance(card.get("body", []), list):
        return "Adaptive Card content must be an object with type 'AdaptiveCard' and a body list."
    if not re.fullmatch(r"1\.[0-6]", str(card.get("version", ""))):
        return "Adaptive Card version must be 1.0 to 1.6."
    for element in card.get("body", []):
        if not isinstance(element, dict) or not element.get("type"):
            return "Every Adaptive Card body element needs a type."
    for action in card.get("actions", []) or []:
        if isinstance(action, dict) and action.get("type") == "Action.OpenUrl" and not re.match(r"https?://", str(action.get("url", ""))):
            return "Action.OpenUrl needs an http(s) url."
    if f'<attachment id="{attachment["id"]}"></attachment>' not in html:
        return f"Attachment with id '{attachment['id']}' is not referenced in the message body (<attachment id=\"{attachment['id']}\"></attachment>)."
    return ""


def register(bp: Blueprint) -> None:
    @bp.get("/v1.0/users")
    def list_users():
        if error := require_scope(*READ_DIRECTORY):
            return error
        if raw := request.args.get("$filter"):
            found, problem = _user_filter(raw)
            if found is None:
                return bad_request(problem, "Request_UnsupportedQuery")
        else:
            with STORE.lock:
                found = [u for u in users().values() if not u.get("_deleted")]
        advanced = request.args.get("$search") or request.args.get("$count") == "true"
        if advanced and request.headers.get("ConsistencyLevel", "").lower() != "eventual":
            return bad_request("$search and $count on directory objects need the header ConsistencyLevel: eventual.", "Request_UnsupportedQuery")
        if raw_search := request.args.get("$search"):
            match = re.fullmatch(r'"(displayName|mail|userPrincipalName):([^"]*)"', raw_search.strip())
            if not match:
                return bad_request(f'Invalid $search: {raw_search} (use "property:text").', "Request_UnsupportedQuery")
            words = match[2].lower().split()
            found = [u for u in found if all(any(part.startswith(w) for part in re.split(r"[\s.@]+", str(u.get(match[1]) or "").lower())) for w in words)]
        return paged([public_user(u, select()) for u in found], "users")

    @bp.get("/v1.0/me", defaults={"user_key": "me"}, endpoint="get_user_me")
    @bp.get("/v1.0/users/<user_key>")
    def get_user(user_key: str):
        user, error = resolve_user(user_key)
        if error:
            return graph_error(404, "Request_ResourceNotFound", f"Resource '{user_key}' does not exist.") if user_key != "me" else error
        return jsonify({"@odata.context": f"{GRAPH}/$metadata#users/$entity", **public_user(user, select())})

    @bp.get("/v1.0/groups")
    def list_groups():
        if error := require_scope(*READ_TEAMS):
            return error
        raw = (request.args.get("$filter") or "").replace(" ", "")
        team_groups = [_team_group(t) for t in col("teams").values() if not t.get("_deleted")]
        if raw.lower() == "resourceprovisioningoptions/any(x:xeq'team')":
            return paged(team_groups, "groups")
        if raw:
            return bad_request(f"Unsupported query filter: {request.args['$filter']}", "Request_UnsupportedQuery")
        with STORE.lock:
            directory = [{k: v for k, v in grp.items() if not k.startswith("_")} for grp in STORE.collection(DIRECTORY, "groups").values()]
        return paged(directory + team_groups, "groups")

    @bp.get("/v1.0/teams")
    def list_teams():
        if error := require_scope(*READ_TEAMS):
            return error
        return paged([_public_team(t) for t in col("teams").values() if not t.get("_deleted")], "teams")

    @bp.get("/v1.0/me/joinedTeams", defaults={"user_key": "me"}, endpoint="joined_teams_me")
    @bp.get("/v1.0/users/<user_key>/joinedTeams")
    def joined_teams(user_key: str):
        user, error = resolve_user(user_key)
        if error:
            return error
        teams = [_public_team(t) for t in col("teams").values() if not t.get("_deleted") and _is_member(t, user)]
        return paged(teams, "teams")

    @bp.get("/v1.0/teams/<team_id>")
    def get_team(team_id: str):
        team, error = _team_or_404(team_id)
        return error or jsonify(_public_team(team))

    @bp.get("/v1.0/teams/<team_id>/members")
    def team_members(team_id: str):
        team, error = _team_or_404(team_id)
        return error or paged(list(team["_members"]), f"teams('{team_id}')/members")

    @bp.post("/v1.0/teams/<team_id>/members")
    def add_team_member(team_id: str):
        team, error = _team_or_404(team_id)
        body, body_error = json_body()
        if error or body_error:
            return error or body_error
        if scope_error := require_scope("TeamMember.ReadWriteNonOwnerRole.All", "TeamMember.ReadWrite.All", "Group.ReadWrite.All"):
            return scope_error
        user, error = _bound_user(body)
        if error:
            return error
        with STORE.lock:
            existing = next((m for m in team["_members"] if m["userId"] == user["id"]), None)
            if existing is None:
                existing = membership(team_id, user, list(body.get("roles") or []))
                team["_members"].append(existing)
                bump(team)
                STORE.record_created(VENDOR, "team_member", existing["id"], f"{user['mail']} → team {team['displayName']}")
        return jsonify(existing), 201

    @bp.delete("/v1.0/teams/<team_id>/members/<member_id>")
    def remove_team_member(team_id: str, member_id: str):
        team, error = _team_or_404(team_id)
        if error:
            return error
        with STORE.lock:
            before = len(team["_members"])
            team["_members"] = [m for m in team["_members"] if m["id"] != member_id]
            if len(team["_members"]) == before:
                return graph_error(404, "NotFound", f"Member {member_id} not found.")
        return Response(status=204)

    @bp.get("/v1.0/teams/<team_id>/channels")
    def list_channels(team_id: str):
        team, error = _team_or_404(team_id)
        if error:
            return error
        if scope_error := require_scope(*READ_CHANNELS):
            return scope_error
        found = [c for c in col("channels").values() if c["_team"] == team_id and not c.get("_deleted")]
        if raw := request.args.get("$filter"):
            match = re.fullmatch(r"\s*membershipType\s+eq\s+'(standard|private|shared)'\s*", raw)
            if not match:
                return bad_request(f"Unsupported query filter: {raw}")
            found = [c for c in found if c["membershipType"] == match[1]]
        return paged([_public_channel(c) for c in found], f"teams('{team_id}')/channels")

    @bp.post("/v1.0/teams/<team_id>/channels")
    def create_channel(team_id: str):
        team, error = _team_or_404(team_id)
        body, body_error = json_body()
        if error or body_error:
            return error or body_error
        if scope_error := require_scope("Channel.Create", "Group.ReadWrite.All", "Directory.ReadWrite.All"):
            return scope_error
        return _create_channel(team, body)

    @bp.get("/v1.0/teams/<team_id>/channels/<channel_id>")
    def get_channel(team_id: str, channel_id: str):
        _team, channel, error = _channel_or_404(team_id, channel_id)
        return error or jsonify(_public_channel(channel))

    @bp.patch("/v1.0/teams/<team_id>/channels/<channel_id>")
    def patch_channel(team_id: str, channel_id: str):
        _team, channel, error = _channel_or_404(team_id, channel_id)
        body, body_error = json_body()
        if error or body_error:
            return error or body_error
        if "displayName" in body and channel.get("_general"):
            return bad_request("The General channel cannot be renamed.")
        with STORE.lock:
            for key in ("displayName", "description"):
                if key in body:
                    channel[key] = str(body[key])
            bump(channel)
        return Response(status=204)

    @bp.delete("/v1.0/teams/<team_id>/channels/<channel_id>")
    def delete_channel(team_id: str, channel_id: str):
        _team, channel, error = _channel_or_404(team_id, channel_id)
        if error:
            return error
        if scope_error := require_scope("Channel.Delete.All", "Group.ReadWrite.All", "Directory.ReadWrite.All"):
            return scope_error
        if channel.get("_general"):
            return bad_request("The General channel cannot be deleted.")
        with STORE.lock:
            channel["_deleted"] = True  # soft-deleted: restorable for 30 days, its name stays taken meanwhile
            bump(channel)
        STORE.record_created(VENDOR, "channel_deleted", channel_id, f"#{channel['displayName']} deleted")
        return Response(status=204)

    @bp.get("/v1.0/teams/<team_id>/channels/<channel_id>/members")
    def channel_members(team_id: str, channel_id: str):
        team, channel, error = _channel_or_404(team_id, channel_id)
        if error:
            return error
        members = channel["_members"] if channel["membershipType"] != "standard" else team["_members"]
        return paged(list(members), f"teams('{team_id}')/channels('{channel_id}')/members")

    @bp.post("/v1.0/teams/<team_id>/channels/<channel_id>/members")
    def add_channel_member(team_id: str, channel_id: str):
        team, channel, error = _channel_or_404(team_id, channel_id)
        body, body_error = json_body()
        if error or body_error:
            return error or body_error
        if scope_error := require_scope("ChannelMember.ReadWrite.All", "ChannelMember.ReadWrite.Group"):
            return scope_error
        if channel["membershipType"] == "standard":
            return bad_request("Members can only be added to private or shared channels; a standard channel's members are the team's members.")
        user, error = _bound_user(body)
        if error:
            return error
        if not _is_member(team, user):
            return bad_request(f"User {user['mail']} is not a member of the team: add them to the team first.")
        with STORE.lock:
            existing = next((m for m in channel["_members"] if m["userId"] == user["id"]), None)
            if existing is None:
                existing = membership(channel_id, user, list(body.get("roles") or []))
                channel["_members"].append(existing)
                bump(channel)
                STORE.record_created(VENDOR, "channel_member", existing["id"], f"{user['mail']} → #{channel['displayName']}")
        return jsonify(existing), 201

    @bp.get("/v1.0/teams/<team_id>/channels/<channel_id>/messages")
    def list_messages(team_id: str, channel_id: str):
        _team, channel, error = _channel_or_404(team_id, channel_id)
        if error:
            return error
        if scope_error := require_scope("ChannelMessage.Read.All", "ChannelMessage.Read.Group", "Group.ReadWrite.All"):
            return scope_error
        if request.args.get("$top") and not request.args["$top"].isdigit() or int(request.args.get("$top") or 1) > 50:
            return bad_request("$top must be between 1 and 50 for channel messages.")
        found = [public(m) for m in reversed(col("messages").values()) if m["_channel"] == channel_id and not m.get("_deleted")]
        return paged(found, f"teams('{team_id}')/channels('{channel_id}')/messages")

    @bp.get("/v1.0/teams/<team_id>/channels/<channel_id>/messages/delta")
    def messages_delta(team_id: str, channel_id: str):
        _team, _channel, error = _channel_or_404(team_id, channel_id)
        if error:
            return error
        found = [m for m in col("messages").values() if m["_channel"] == channel_id]
        return delta_answer(found, public, lambda m: {"id": m["id"], "@removed": {"reason": "deleted"}})

    @bp.get("/v1.0/teams/<team_id>/channels/<channel_id>/messages/<message_id>")
    def get_message(team_id: str, channel_id: str, message_id: str):
        _team, _channel, error = _channel_or_404(team_id, channel_id)
        message = col("messages").get(message_id)
        if error or message is None or message["_channel"] != channel_id:
            return error or graph_error(404, "NotFound", f"Message {message_id} not found.")
        return jsonify(public(message))

    @bp.post("/v1.0/teams/<team_id>/channels/<channel_id>/messages")
    def post_message(team_id: str, channel_id: str):
        team, channel, error = _channel_or_404(team_id, channel_id)
        body, body_error = json_body()
        if error or body_error:
            return error or body_error
        if not delegated():
            # Graph's own answer to an application token: live posts need a signed-in user (or a bot / incoming webhook).
            return graph_error(
                401,
                "Unauthorized",
                "Message POST is allowed in application-only context only for import purposes. Refer to https://docs.microsoft.com/microsoftteams/platform/graph-api/import-messages/import-external-messages-to-teams for more details.",
            )
        if scope_error := require_scope("ChannelMessage.Send", "Group.ReadWrite.All"):
            return scope_error
        return _post_message(team, channel, body)

    register_archive(bp)


def register_archive(bp: Blueprint) -> None:
    @bp.post("/v1.0/teams/<team_id>/channels/<channel_id>/archive", defaults={"archived": True}, endpoint="archive_channel")
    @bp.post("/v1.0/teams/<team_id>/channels/<channel_id>/unarchive", defaults={"archived": False}, endpoint="unarchive_channel")
    def set_archived(team_id: str, channel_id: str, archived: bool):
        """Archiving makes a channel read-only (Graph answers 202 and finishes asynchronously; the stand-in finishes at once)."""
        _team, channel, error = _channel_or_404(team_id, channel_id)
        if error:
            return error
        if scope_error := require_scope("Channel.ReadWrite.All", "ChannelSettings.ReadWrite.All", "Group.ReadWrite.All", "Directory.ReadWrite.All"):
            return scope_error
        if channel.get("_general"):
            return bad_request("The General channel cannot be archived.")
        if bool(channel.get("isArchived")) == archived:
            return bad_request("Channel is already archived." if archived else "Channel is not archived.")
        with STORE.lock:
            channel["isArchived"] = archived
            bump(channel)
        STORE.record_created(
            VENDOR,
            "channel_archived" if archived else "channel_unarchived",
            channel_id,
            f"#{channel['displayName']} {'archived' if archived else 'unarchived'}",
        )
        response = Response(status=202)
        response.headers["Location"] = f"/teams('{team_id}')/channels('{channel_id}')/operations('{new_id()}')"
        return response


def _create_channel(team: dict[str, Any], body: dict[str, Any]) -> Response | tuple[Response, int]:
    name = str(body.get("displayName") or "").strip()
    kind = body.get("membershipType", "standard")
    if not name or len(name) > 50:
        return bad_request("displayName is required and must be at most 50 characters.")
    if CHANNEL_FORBIDDEN.search(name) or name.startswith(("_", ".")) or name.endswith("."):
        return bad_request("Channel name contains invalid characters: ~ # % & * { } + / \\ : < > ? | ' \" , .. are not allowed.")
    if kind not in ("standard", "private", "shared"):
        return bad_request(f"Invalid membershipType '{kind}'.")
    with STORE.lock:
        if any(c["_team"] == team["id"] and c["displayName"].lower() == name.lower() for c in col("channels").values()):
            return bad_request("Channel name already existed, please use other name.", "NameAlreadyExists")
    members: list[dict[str, Any]] = []
    if kind != "standard":
        for entry in body.get("members") or []:
            user, error = _bound_user(entry if isinstance(entry, dict) else {})
            if error:
                return error
            if not _is_member(team, user):
                return bad_request(f"User {user['mail']} is not a member of the team: private channel members must be team members.")
            members.append(membership(team["id"], user, list(entry.get("roles") or [])))
        creator = caller_user()
        if creator is not None and not any(m["userId"] == creator["id"] for m in members):
            if not _is_member(team, creator):
                return graph_error(403, "Forbidden", "The signed-in user is not a member of the team.")
            members.insert(0, membership(team["id"], creator, ["owner"]))
        if not any("owner" in m["roles"] for m in members):
            return bad_request("A private or shared channel created with application permissions needs at least one member with the owner role.")
    elif body.get("members"):
        return bad_request("members can only be given for private or shared channels.")
    channel_id = f"19:{new_id().replace('-', '')}@thread.tacv2"
    channel = {
        "id": channel_id,
        "displayName": name,
        "description": body.get("description"),
        "membershipType": kind,
        "isFavoriteByDefault": False,
        "createdDateTime": iso(now()),
        "email": "",
        "webUrl": f"https://teams.microsoft.com/l/channel/{channel_id.replace(':', '%3a').replace('@', '%40')}/{name.replace(' ', '%20')}?groupId={team['id']}&tenantId={TENANT_ID}",
        "tenantId": TENANT_ID,
        "isArchived": False,
        "_team": team["id"],
        "_members": members,
    }
    col("channels")[channel_id] = bump(channel)
    STORE.record_created(VENDOR, "channel", channel_id, f"#{name} ({kind}) in {team['displayName']}", channel["webUrl"])
    if failure := failure_after_create():
        return failure
    return jsonify({"@odata.context": f"{GRAPH}/$metadata#teams('{team['id']}')/channels/$entity", **_public_channel(channel)}), 201


def _post_message(team: dict[str, Any], channel: dict[str, Any], body: dict[str, Any]) -> Response | tuple[Response, int]:
    user = caller_user()
    if channel.get("isArchived"):
        return graph_error(403, "Forbidden", "The channel is archived: it is read-only.")
    if not _is_member(team, user) or (channel["membershipType"] != "standard" and not any(m["userId"] == user["id"] for m in channel["_members"])):
        return graph_error(403, "Forbidden", f"{user['userPrincipalName']} is not a member of this channel.")
    content = body.get("body")
    if not isinstance(content, dict) or not isinstance(content.get("content"), str):
        return bad_request("body.content is required.")
    content_type = content.get("contentType", "text")
    if content_type not in ("text", "html"):
        return bad_request("body.contentType must be 'text' or 'html'.")
    attachments = body.get("attachments") or []
    if not isinstance(attachments, list) or not all(isinstance(a, dict) for a in attachments):
        return bad_request("attachments must be a list of objects.")
    if any(a.get("contentType") == CARD for a in attachments) and content_type != "html":
        return bad_request("A message with an Adaptive Card attachment needs body.contentType 'html' referencing the attachment.")
    for attachment in attachments:
        if problem := _check_card(attachment, content["content"]):
            return bad_request(problem)
    if not content["content"].strip() and not attachments:
        return bad_request("A message needs body content or an attachment.")
    if len(json.dumps(body)) > 28 * 1024:
        return graph_error(413, "RequestEntityTooLarge", "Message size exceeds the 28 KB limit.")
    message_id = str(int(time.time() * 1000) + STORE.next_id())
    message = {
        "id": message_id,
        "replyToId": None,
        "etag": message_id,
        "messageType": "message",
        "createdDateTime": iso(now()),
        "deletedDateTime": None,
        "subject": body.get("subject"),
        "summary": None,
        "chatId": None,
        "importance": body.get("importance", "normal"),
        "locale": "en-us",
        "webUrl": f"https://teams.microsoft.com/l/message/{channel['id'].replace(':', '%3a').replace('@', '%40')}/{message_id}?groupId={team['id']}&tenantId={TENANT_ID}",
        "from": identity(user),
        "body": {"contentType": content_type, "content": content["content"]},
        "channelIdentity": {"teamId": team["id"], "channelId": channel["id"]},
        "attachments": [{**{k: None for k in ATTACHMENT_KEYS}, **a} for a in attachments],
        "mentions": body.get("mentions") or [],
        "reactions": [],
        "_channel": channel["id"],
    }
    col("messages")[message_id] = bump(message)
    label = "Adaptive Card" if attachments else "message"
    STORE.record_created(VENDOR, "message", message_id, f"{label} in #{channel['displayName']} by {user['mail']}", message["webUrl"])
    resource = f"teams('{team['id']}')/channels('{channel['id']}')/messages('{message_id}')"
    notify({f"teams/{team['id']}/channels/{channel['id']}/messages", "teams/getallmessages"}, "created", resource, {"id": message_id})
    if failure := failure_after_create():
        return failure
    return jsonify({"@odata.context": f"{GRAPH}/$metadata#teams('{team['id']}')/channels('{channel['id']}')/messages/$entity", **public(message)}), 201


def inbound_message(channel_id: str, email: str, text: str) -> tuple[dict[str, Any] | None, str]:
    """A person's plain message in a channel, as if typed in Teams (drives notifications and delta)."""
    channel = col("channels").get(channel_id)
    user = find_user(email)
    if channel is None or channel.get("_deleted") or user is None:
        return None, "no such channel or user"
    team = col("teams")[channel["_team"]]
    from flask import g

    g.caller = {"user": user, "delegated": True, "scopes": set()}
    response = _post_message(team, channel, {"body": {"contentType": "text", "content": text}})
    answer = response[0] if isinstance(response, tuple) else response
    body = answer.get_json()
    return (body, "") if answer.status_code < 300 else (None, body["error"]["message"])
