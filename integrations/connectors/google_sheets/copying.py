"""copy_document (the documents role) on Google Drive: a template copied into the incident's folder, shared, undone by deleting."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from integrations.connectors.base import ActionResult, TrackedObject
from integrations.connectors.declarative.runtime import text
from integrations.connectors.declarative.template import render
from integrations.connectors.kit.once import create_once
from integrations.errors import ApiBadRequest, ApiNotFound

FOLDER = "application/vnd.google-apps.folder"
SHARE_ROLES = {"read": "reader", "view": "reader", "write": "writer", "edit": "writer", "comment": "commenter"}
_DOC_URL = re.compile(r"^https://(?:docs|drive)\.google\.com/(?:[a-z]+/)*d/([A-Za-z0-9_-]{10,200})(?:[/?#].*)?$")
_FILE_ID = re.compile(r"^[A-Za-z0-9_-]{10,200}$")
_BAD_NAME = re.compile(r"[\x00-\x1f]")
ALL_DRIVES = {"supportsAllDrives": "true"}
COPY_FIELDS = "id,name,webViewLink,mimeType,parents"


def _drive(connector: Any) -> str:
    return text(render("{{ vars.drive }}", connector.scope()))


def file_id(reference: Any) -> str:
    """A Drive file id from the picker, a bare id or a docs/drive.google.com link."""
    value = str(reference or "").strip()
    if match := _DOC_URL.match(value):
        return match.group(1)
    if _FILE_ID.match(value):
        return value
    raise ApiBadRequest(f"Google Drive: '{value[:100]}' is not a file reference (pick the template file).", vendor_code="invalid_document")


def clean_name(name: str) -> str:
    return _BAD_NAME.sub(" ", str(name)).strip()[:200]


def folder_segments(folder: str) -> list[str]:
    """ "Incidents/2026-12-06 Data breach" → its segments; empty ones dropped, "." and ".." refused."""
    parts = [clean_name(part) for part in re.split(r"[/\\]", str(folder or ""))]
    if any(part in (".", "..") for part in parts):
        raise ApiBadRequest("Google Drive: a folder path cannot contain '.' or '..'.", vendor_code="invalid_folder")
    return [part for part in parts if part]


def _quoted(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _emails(value: Any) -> list[str]:
    items = value if isinstance(value, (list, tuple)) else re.split(r"[,;\s]+", str(value or ""))
    found: list[str] = []
    for item in items:
        email = str((item.get("email") if isinstance(item, Mapping) else item) or "").strip().lower()
        if email and "@" in email and email not in found:
            found.append(email)
    return found


def _child(connector: Any, parent: str, name: str, *, folder: bool) -> dict[str, Any] | None:
    kind = f"mimeType = '{FOLDER}'" if folder else f"mimeType != '{FOLDER}'"
    q = f"name = {_quoted(name)} and {_quoted(parent)} in parents and trashed = false and {kind}"
    params = {"q": q, "pageSize": 10, "fields": f"files({COPY_FIELDS})", "includeItemsFromAllDrives": "true", **ALL_DRIVES}
    found = connector.client.get(f"{_drive(connector)}files", params=params).json().get("files") or []
    return found[0] if found else None


def _ensure_folder(connector: Any, segments: list[str]) -> tuple[str, bool]:
    """The folder at `segments` under My Drive, created where missing; (its id, whether the last one is new)."""
    parent, created = "root", False
    for segment in segments:
        existing = None if created else _child(connector, parent, segment, folder=True)
        if existing is None:
            body = {"name": segment, "mimeType": FOLDER, "parents": [parent]}
            existing = connector.client.post(f"{_drive(connector)}files", params={"fields": "id", **ALL_DRIVES}, json=body).json()
            created = True
        parent = str(existing["id"])
    return parent, created


def _share(connector: Any, copy_id: str, emails: list[str], role: str, message: str, *, check_existing: bool) -> list[str]:
    """Grant each person who has no access yet (Drive e-mails them); the addresses the copy is now shared with."""
    already: set[str] = set()
    if check_existing:
        answer = connector.client.get(f"{_drive(connector)}files/{copy_id}/permissions", params={"fields": "permissions(emailAddress)", **ALL_DRIVES})
        already = {str(p.get("emailAddress") or "").lower() for p in answer.json().get("permissions") or []}
    for email in (e for e in emails if e not in already):
        params = {"sendNotificationEmail": "true", **ALL_DRIVES}
        if message:
            params["emailMessage"] = message[:2000]
        connector.client.post(f"{_drive(connector)}files/{copy_id}/permissions", params=params, json={"type": "user", "role": role, "emailAddress": email})
    return emails


def copy_document(connector: Any, payload: Mapping[str, Any]) -> ActionResult:
    source = file_id(payload.get("source"))
    role = SHARE_ROLES.get(str(payload.get("share_role") or "read").strip().lower())
    if role is None:
        raise ApiBadRequest(f"Google Drive: share_role '{str(payload.get('share_role'))[:40]}' is not read, comment or write.", vendor_code="invalid_role")
    segments = folder_segments(str(payload.get("folder") or ""))
    if not segments:
        raise ApiBadRequest("Google Drive: folder is required (e.g. 'Incidents/2026-12-06 Data breach').", vendor_code="invalid_folder")
    drive = _drive(connector)
    original = connector.client.get(f"{drive}files/{source}", params={"fields": COPY_FIELDS, **ALL_DRIVES}).json()
    if original.get("mimeType") == FOLDER:
        raise ApiBadRequest(f"Google Drive: '{original.get('name')}' is a folder; choose a file to copy.", vendor_code="invalid_document")
    name = clean_name(str(payload.get("name") or "")) or str(original.get("name") or "document")
    folder_id, folder_is_new = _ensure_folder(connector, segments)
    # The incident's folder holds one copy per name: a retry (or a re-run) finds it instead of copying twice.
    existing = None if folder_is_new else _child(connector, folder_id, name, folder=False)
    created = existing is None
    if existing is None:

        def send() -> dict[str, Any]:
            body = {"name": name, "parents": [folder_id]}
            return connector.client.post(f"{drive}files/{source}/copy", params={"fields": COPY_FIELDS, **ALL_DRIVES}, json=body, retry=False).json()

        existing = create_once(connector.client, send, lambda: _child(connector, folder_id, name, folder=False), what="document copy")
    copy_id = str(existing["id"])
    shared = _share(connector, copy_id, _emails(payload.get("share_with")), role, str(payload.get("message") or ""), check_existing=not created)
    folder_path = "/".join(segments)
    url = str(existing.get("webViewLink") or "")
    tracked = TrackedObject(title=str(existing.get("name") or name), status="shared" if shared else "copied", is_done=True, url=url)
    tracked.details = {"folder": folder_path, "shared_with": shared, "role": role}
    return ActionResult(
        external_id=copy_id,
        url=url,
        data={"name": tracked.title, "folder": folder_path, "folder_id": folder_id, "shared_with": shared},
        created=created,
        tracked=tracked,
        link_text=tracked.title,
        summary=f"{'Copied' if created else 'Found the copy'} in {folder_path}" + (f"; shared with {len(shared)}" if shared else ""),
    )


def undo_copy(connector: Any, external_id: str) -> ActionResult:
    """Delete the copy (sharing e-mails already sent stay sent); one already gone is fine."""
    try:
        connector.client.delete(f"{_drive(connector)}files/{file_id(external_id)}", params=ALL_DRIVES)
    except ApiNotFound:
        return ActionResult(external_id=external_id, created=False, summary="The copy was already deleted.")
    return ActionResult(external_id=external_id, created=False, summary="Deleted the copy.")
