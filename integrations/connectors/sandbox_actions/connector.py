"""Connector for the sandbox's generic action target: idempotent create/update, bulk create, status reads and webhooks.

It exists to exercise the playbook engine end to end over real HTTP. Besides the generic `create_object` and
`update_object` it accepts the contract's action names (create_channel, invite_users, create_issue,
create_event, send_email…) and maps them onto objects of a matching kind, so a playbook template written for
Slack/Jira/Calendar can be bound to this stand-in in tests and benchmarks. Idempotency: every created object
carries a deterministic marker derived from the idempotency key; the connector searches by marker before
creating, so a retry or a re-run returns the existing object with created=False.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

import requests

from integrations.connectors.base import ActionResult, BaseConnector, ConnectionTest, TrackedObject
from integrations.connectors.entities import BastionTask
from integrations.connectors.google_calendar import meeting_link_text
from integrations.connectors.sandbox_actions.manifest import ALIASES, MANIFEST
from integrations.connectors.sandbox_actions.webhooks import SandboxActionsWebhooksMixin, object_state
from integrations.errors import ApiBadRequest, ApiError, ApiNotFound
from integrations.http import BearerAuth, classify_generic

MAX_BULK = 50
TITLE_FIELDS = ("summary", "name", "title", "subject", "text", "body")  # where a payload names what it creates, first wins
OWNER_FIELDS = ("assignee_email", "owner", "email")
SANDBOX_KEY = re.compile(r"[A-Z]+-(\d+)")  # the target keys an object "<PREFIX>-<its id>" (OPS-12)


def marker_for(idempotency_key: str) -> str:
    """The deterministic marker stored on the target's object (no secrets, stable across retries).

    Not kit.markers.idempotency_marker: its "bastion-" prefix would change every marker this target stores and searches for.
    """
    return "bst-" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:24]


def _owner(action: str, payload: Mapping[str, Any]) -> str:
    if action == "create_issue":
        return str(payload.get("assignee_email") or "")
    if action == "send_email":
        to = payload.get("to") or []
        return str(to[0] if isinstance(to, list) and to else to or "")
    if action in ("send_dm",):
        return str(payload.get("email") or "")
    return str(payload.get("owner") or "")


def _tracked(action: str, payload: Mapping[str, Any], obj: Mapping[str, Any]) -> TrackedObject:
    """What the war room tracks of the object a payload created: its name as asked (a channel as #name), owner, status."""
    title = next((str(payload[name]) for name in TITLE_FIELDS if payload.get(name)), "")
    if title and action == "create_channel":
        title = f"#{title}"
    owner = next((str(payload[name]) for name in OWNER_FIELDS if isinstance(payload.get(name), str) and payload[name]), "")
    tracked = object_state(str(obj.get("status") or "open"), owner=owner[:254], key=str(obj.get("key") or ""), url=str(obj.get("url", "")), title=title[:500])
    if action == "create_event":
        tracked.details["attendees"] = [{"email": email, "response": "needsAction"} for email in payload.get("attendees") or []]
    return tracked


def _link_text(action: str, payload: Mapping[str, Any], obj: Mapping[str, Any]) -> str:
    """The war room's words for the link, as the real vendor's connector words them."""
    if action == "create_channel":
        return "#" + str(payload.get("name") or "channel").lstrip("#")
    if action == "create_event":
        return meeting_link_text(payload)
    if action == "post_message":
        return "Briefing posted"
    return str(obj.get("key") or "")


class SandboxActionsConnector(SandboxActionsWebhooksMixin, BaseConnector):
    """Objects of any kind, found by marker before they are created; stand-ins answer as the vendors' actions would."""

    manifest = MANIFEST

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        if self.client is not None and self.client.auth is None and self.credentials.get("api_key"):
            self.client.auth = BearerAuth(str(self.credentials["api_key"]))

    @classmethod
    def classify_response(cls, response: requests.Response, path: str) -> ApiError | None:
        """The target answers errors as {"error": {"code", "message"}}: the generic envelope."""
        return classify_generic(response, path)

    def test_connection(self) -> ConnectionTest:
        body = self.client.get("api/me").json()
        return ConnectionTest(ok=True, identity=str(body.get("identity", "")), account_id=str(body.get("account_id", "")))

    # Acting
    def _object_body(self, action: str, payload: Mapping[str, Any], idempotency_key: str) -> dict[str, Any]:
        if action == "create_object":
            kind, title = payload.get("kind"), payload.get("title")
            attrs = dict(payload.get("attrs") or {})
        else:
            kind, title_field = ALIASES[action]
            title = payload.get(title_field)
            attrs = {k: v for k, v in payload.items() if k != title_field}
        if not kind or not isinstance(title, str) or not title.strip():
            raise ApiBadRequest(f"{action} needs a kind and a non-empty title.")
        return {"kind": kind, "title": title, "owner": _owner(action, payload), "marker": marker_for(idempotency_key), "attrs": attrs}

    def _result(self, obj: Mapping[str, Any], *, created: bool, action: str = "", payload: Mapping[str, Any] | None = None) -> ActionResult:
        payload = payload or {}
        return ActionResult(
            external_id=str(obj["id"]),
            url=str(obj.get("url", "")),
            data={"key": obj.get("key", ""), "status": obj.get("status", "")},
            created=created,
            tracked=_tracked(action, payload, obj),
            link_text=_link_text(action, payload, obj),
        )

    def _find(self, markers: list[str]) -> dict[str, dict[str, Any]]:
        body = self.client.get("api/objects", params={"markers": ",".join(markers)}).json()
        return {obj["marker"]: obj for obj in body.get("objects", [])}

    def perform(self, action: str, payload: Mapping[str, Any], *, idempotency_key: str, known_new: bool = False) -> ActionResult:
        """known_new is not used: the marker search always runs, so the target sees the requests it always saw."""
        if action == "update_object":
            body = {k: payload[k] for k in ("status", "title", "owner", "attrs") if k in payload}
            obj = self.client.patch(f"api/objects/{payload['id']}", json=body).json()
            return self._result(obj, created=False, action=action, payload=payload)
        if action == "invite_users":
            emails = [str(e) for e in payload.get("emails") or []]
            obj = self.client.patch(f"api/objects/{payload['channel']}", json={"add_members": emails}).json()
            not_found = obj.get("not_found", [])
            invited = max(len(emails) - len(not_found), 0)
            return ActionResult(
                external_id=str(obj["id"]),
                url=str(obj.get("url", "")),
                data={"invited": [e for e in emails if e not in not_found], "not_found": not_found},
                created=False,
                summary=f"{invited} invited" + (f", {len(not_found)} not found" if not_found else ""),
            )
        if action != "create_object" and action not in ALIASES:
            raise ApiBadRequest(f"Sandbox actions cannot perform '{action}'.")
        body = self._object_body(action, payload, idempotency_key)
        existing = self._find([body["marker"]]).get(body["marker"])
        if existing:
            return self._result(existing, created=False, action=action, payload=payload)
        return self._result(self.client.post("api/objects", json=body).json(), created=True, action=action, payload=payload)

    def perform_bulk(
        self, action: str, payloads: list[Mapping[str, Any]], *, idempotency_keys: list[str], known_new: bool = False
    ) -> list[ActionResult | Exception]:
        """Search all markers in one call, then create the missing ones ≤50 per bulk call; errors come back per item."""
        if action != "create_object" and action not in ALIASES:
            return super().perform_bulk(action, payloads, idempotency_keys=idempotency_keys, known_new=known_new)
        results: list[ActionResult | Exception | None] = [None] * len(payloads)
        bodies: list[dict[str, Any] | None] = []
        for index, (payload, key) in enumerate(zip(payloads, idempotency_keys, strict=True)):
            try:
                bodies.append(self._object_body(action, payload, key))
            except ApiBadRequest as exc:
                bodies.append(None)
                results[index] = exc
        markers = [b["marker"] for b in bodies if b]
        existing = self._find(markers) if markers else {}
        missing: list[int] = []
        for index, body in enumerate(bodies):
            if body is None:
                continue
            if body["marker"] in existing:
                results[index] = self._result(existing[body["marker"]], created=False, action=action, payload=payloads[index])
            else:
                missing.append(index)
        for start in range(0, len(missing), MAX_BULK):
            chunk = missing[start : start + MAX_BULK]
            response = self.client.request("POST", "api/objects/bulk", json={"objects": [bodies[i] for i in chunk]}, retry=True)
            body = response.json()
            for created in body.get("objects", []):
                index = chunk[created["index"]]
                results[index] = self._result(created["object"], created=True, action=action, payload=payloads[index])
            for error in body.get("errors", []):
                results[chunk[error["index"]]] = ApiBadRequest(
                    str(error.get("message", "rejected")), status=int(error.get("status", 400)), path="api/objects/bulk"
                )
        return [r if r is not None else ApiBadRequest("No result returned for this item.") for r in results]

    def fetch_objects(self, kind: str, external_ids: list[str]) -> dict[str, TrackedObject]:
        """Each object's current state, one read per object; asked for by key (OPS-12), the id is the key's number."""
        found: dict[str, TrackedObject] = {}
        for ref in external_ids:
            matched = SANDBOX_KEY.fullmatch(ref)
            try:
                obj = self.client.get(f"api/objects/{matched.group(1) if matched else ref}").json()
            except ApiNotFound:
                found[ref] = object_state("deleted")
                continue
            found[ref] = object_state(str(obj.get("status", "")), owner=str(obj.get("owner", "")), key=str(obj.get("key", "")), url=str(obj.get("url", "")))
        return found

    def to_bastion(self, entity: str, record: Mapping[str, Any]) -> dict[str, Any]:
        return BastionTask(external_id=str(record.get("id", "")), key=record.get("key", ""), status=record.get("status", ""), owner=record.get("owner", ""))


CONNECTOR = SandboxActionsConnector
