"""SharePoint and OneDrive through Graph: the forms' file picker and copy_document (a template copied into the incident's folder, shared)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from integrations.connectors.base import (
    ActionResult,
    ActionSpec,
    Capability,
    DocumentItem,
    EntitySpec,
    FieldShape,
    Idempotency,
    TrackedKind,
    TrackedObject,
)
from integrations.connectors.kit.once import create_once
from integrations.connectors.microsoft365.client import ID, GraphBase, _route, register_permission_routes
from integrations.errors import ApiBadRequest, ApiConflict, ApiHostError, ApiNotFound
from integrations.http import HttpClient

FILES_SCOPES: Mapping[str, str] = {
    "Sites.Read.All": "List the SharePoint sites and document libraries you can see in the forms' file picker",
    "Files.ReadWrite.All": "Copy a playbook's document templates into the incident's folder and share them; read workbook tables and ranges into scenario fields",
}
FILES_CAPABILITIES = (Capability.DOCUMENTS, Capability.DOCUMENT_VALUES)
FILES_ENTITIES: tuple[EntitySpec, ...] = ()  # drive items are browsed live (the picker), not synced
FILES_ACTIONS = (
    ActionSpec(
        "copy_document",
        "Copy a document",
        "Copy a template (a SharePoint or OneDrive file) into the incident's folder, created when missing, and share it with the "
        "stakeholders by a sharing invitation. Delegated: Files.ReadWrite.All within the signed-in user's access. Application: "
        "Files.ReadWrite.All or Sites.ReadWrite.All, both need an administrator's consent (or Sites.Selected with the template and "
        "incident sites granted to the app).",
        {"source": "document", "folder": "string", "name": "string?", "share_with": "[email]", "share_role": "string=read", "message": "string?"},
        Idempotency.SEARCH,
        fields={
            "folder": FieldShape(max_chars=400, single_line=True),
            "name": FieldShape(max_chars=200, single_line=True, optional=True),
            "share_with": FieldShape(optional=True),
            "share_role": FieldShape(optional=True),
            "message": FieldShape(max_chars=2000, optional=True),
        },
        tracks=TrackedKind.RECORD,
        tracks_label="document",
        verb="copied",
        undo="Delete the copy (it goes to the site's recycle bin, where an owner can restore it).",
        kept_on_undo="Sharing invitations already e-mailed cannot be recalled.",
        permissions=("Files.ReadWrite.All", "Sites.ReadWrite.All"),
    ),
)

_DRIVE_ITEM = rf"(?:drives/{ID}/items/{ID}|drives/{ID}/root|me/drive/(?:items/{ID}|root))"
# The least-privileged permission per call (msgraph permissions map), named in a 403's message; workbook calls are in excel.py.
register_permission_routes(
    [
        _route("GET", rf"sites(?:/{ID}(?:/drives)?)?", ("Sites.Read.All",), ("Sites.Read.All",)),
        _route("GET", r"me/drive(?:/.*)?", ("Files.Read",), (), "an application has no signed-in user's OneDrive"),
        _route("GET", rf"{_DRIVE_ITEM}(?:/children|/permissions|/search\(.*\))?", ("Files.Read.All",), ("Files.Read.All",)),
        _route("POST", rf"{_DRIVE_ITEM}/(?:children|copy|invite)", ("Files.ReadWrite.All",), ("Files.ReadWrite.All", "Sites.ReadWrite.All")),
        _route("DELETE", _DRIVE_ITEM, ("Files.ReadWrite.All",), ("Files.ReadWrite.All", "Sites.ReadWrite.All")),
    ]
)
MAX_BROWSE_ITEMS = 200
COPY_POLL_ATTEMPTS = 20  # with the waits below: about 30 s before the step is retried (the retry finds the finished copy)
COPY_POLL_WAITS = (0.2, 0.4, 0.8, 1.5, 2.0)
SHARE_ROLES = {"read": "read", "write": "write", "edit": "write", "view": "read"}
# SharePoint refuses these in file and folder names; leading/trailing dots and spaces too.
_BAD_NAME_CHARS = re.compile(r'["*:<>?/\\|#%\x00-\x1f]')
ITEM_SELECT = "id,name,webUrl,folder,file,package,parentReference,lastModifiedDateTime"


@dataclass(frozen=True)
class DriveRef:
    """What a DocumentItem id points at: a site, a drive (its root) or an item of a drive."""

    kind: str  # site | drive | item | onedrive
    site: str = ""
    drive: str = ""
    item: str = ""

    @property
    def item_path(self) -> str:
        return f"drives/{_seg(self.drive)}/items/{_seg(self.item or 'root')}"


def document_id(kind: str, *parts: str) -> str:
    """The opaque DocumentItem id Bastion passes back: "site:<id>", "drive:<id>", "item:<drive>:<item>"."""
    return ":".join((kind, *parts))


def parse_document_id(value: Any, *, where: str = "document") -> DriveRef:
    """Read a DocumentItem id made by document_id; anything else is a 400 naming the field."""
    text = str(value or "").strip()
    kind, _, rest = text.partition(":")
    if kind == "site" and rest:
        return DriveRef("site", site=rest)
    if kind == "drive" and rest:
        return DriveRef("drive", drive=rest)
    if kind == "item":
        drive, _, item = rest.partition(":")
        if drive and item:
            return DriveRef("item", drive=drive, item=item)
    if text == "onedrive":
        return DriveRef("onedrive")
    raise ApiBadRequest(f"Microsoft 365: {where} '{text[:120]}' is not a document reference from the file picker.", vendor_code="invalid_document")


def _seg(value: str) -> str:
    """One path segment of a Graph URL (ids carry '!' and ',', kept as Graph shows them)."""
    return quote(str(value), safe="!,")


def _odata_string(value: str) -> str:
    """An OData string literal's content: single quotes doubled."""
    return str(value).replace("'", "''")


def clean_name(name: str) -> str:
    """A file or folder name SharePoint accepts (its forbidden characters replaced, no leading/trailing dots or spaces)."""
    cleaned = _BAD_NAME_CHARS.sub("-", str(name)).strip(" .")
    return cleaned[:200]


def folder_segments(folder: str) -> list[str]:
    """ "Incidents/2026-12-06 Data breach" → its cleaned segments; empty ones dropped."""
    return [s for s in (clean_name(part) for part in re.split(r"[/\\]", str(folder or ""))) if s]


def item_breadcrumb(item: Mapping[str, Any]) -> str:
    """The parent folder's path inside its drive, as "Templates / Legal" (Graph gives "/drives/<id>/root:/Templates/Legal")."""
    path = str((item.get("parentReference") or {}).get("path") or "")
    _, _, inside = path.partition("root:")
    return " / ".join(unquote(part) for part in inside.split("/") if part)


def drive_item_document(item: Mapping[str, Any], drive_id: str = "") -> DocumentItem:
    drive = str((item.get("parentReference") or {}).get("driveId") or drive_id)
    return DocumentItem(
        id=document_id("item", drive, str(item["id"])),
        name=str(item.get("name") or ""),
        is_folder="folder" in item or "package" in item,
        path=item_breadcrumb(item),
        url=str(item.get("webUrl") or ""),
        modified_at=str(item.get("lastModifiedDateTime") or ""),
        mime_type=str((item.get("file") or {}).get("mimeType") or ""),
    )


def granted_emails(permissions: list[Mapping[str, Any]]) -> set[str]:
    """Who a drive item is already shared with (users granted directly or invited), lower-cased."""
    emails: set[str] = set()
    for permission in permissions:
        identities = [permission.get("grantedToV2"), permission.get("grantedTo"), *(permission.get("grantedToIdentitiesV2") or [])]
        for identity in identities:
            email = ((identity or {}).get("user") or {}).get("email")
            if email:
                emails.add(str(email).lower())
        invited = (permission.get("invitation") or {}).get("email")
        if invited:
            emails.add(str(invited).lower())
    return emails


def _emails(value: Any) -> list[str]:
    items = value if isinstance(value, (list, tuple)) else re.split(r"[,;\s]+", str(value or ""))
    found: list[str] = []
    for item in items:
        email = str((item.get("email") if isinstance(item, Mapping) else item) or "").strip().lower()
        if email and "@" in email and email not in found:
            found.append(email)
    return found


class FilesMixin(GraphBase):
    """Browse sites, drives and folders; copy a template into a folder and share it. Mixed into the Microsoft 365 connector."""

    # -------------------------------------------------------------- reading

    def _graph_pages(self, path: str, params: Mapping[str, Any] | None = None, *, limit: int = MAX_BROWSE_ITEMS) -> Iterator[dict[str, Any]]:
        """Items of a Graph collection (nextLink followed on the Graph host only), up to `limit`."""
        for count, item in enumerate(self.iter_items(path, params), start=1):
            yield item
            if count >= limit:
                return

    def browse_documents(self, folder: str = "", *, query: str = "") -> list[DocumentItem]:
        query = str(query or "").strip()[:200]
        if not folder:
            return self._browse_top(query)
        ref = parse_document_id(folder, where="folder")
        if ref.kind == "site":
            return self._browse_site(ref.site, query)
        if ref.kind == "onedrive":
            drive = self.graph("GET", "me/drive", params={"$select": "id"})
            ref = DriveRef("drive", drive=str(drive["id"]))
        if query:
            path = f"{ref.item_path}/search(q='{quote(_odata_string(query), safe='')}')"
        else:
            path = f"{ref.item_path}/children"
        return [drive_item_document(item, ref.drive) for item in self._graph_pages(path, {"$select": ITEM_SELECT})]

    def _browse_top(self, query: str) -> list[DocumentItem]:
        """Sites the connection can see (SharePoint's own "search" parameter; "*" lists them all) and, for a person, their OneDrive."""
        documents = [
            DocumentItem(id=document_id("site", str(site["id"])), name=str(site.get("displayName") or site.get("name") or ""), is_folder=True,
                         path="Sites", url=str(site.get("webUrl") or ""), modified_at=str(site.get("lastModifiedDateTime") or ""))
            for site in self._graph_pages("sites", {"search": query or "*"})
        ]  # fmt: skip
        if not self.is_application:
            if query:
                drive = str(self.graph("GET", "me/drive", params={"$select": "id"})["id"])
                path = f"drives/{_seg(drive)}/items/root/search(q='{quote(_odata_string(query), safe='')}')"
                documents.extend(drive_item_document(item, drive) for item in self._graph_pages(path, {"$select": ITEM_SELECT}))
            else:
                drive = self.graph("GET", "me/drive", params={"$select": "id,name,webUrl"})
                documents.append(DocumentItem(id="onedrive", name="OneDrive", is_folder=True, path="", url=str(drive.get("webUrl") or "")))
        return documents[:MAX_BROWSE_ITEMS]

    def _browse_site(self, site_id: str, query: str) -> list[DocumentItem]:
        """A site's document libraries (drives); with a query, matching files of every library."""
        site = self.graph("GET", f"sites/{_seg(site_id)}", params={"$select": "id,displayName,webUrl"})
        drives = list(self._graph_pages(f"sites/{_seg(site_id)}/drives", {"$select": "id,name,webUrl,lastModifiedDateTime"}))
        if not query:
            return [
                DocumentItem(id=document_id("drive", str(d["id"])), name=str(d.get("name") or ""), is_folder=True,
                             path=str(site.get("displayName") or ""), url=str(d.get("webUrl") or ""), modified_at=str(d.get("lastModifiedDateTime") or ""))
                for d in drives
            ]  # fmt: skip
        found: list[DocumentItem] = []
        for drive in drives:
            path = f"drives/{_seg(drive['id'])}/items/root/search(q='{quote(_odata_string(query), safe='')}')"
            found.extend(drive_item_document(item, str(drive["id"])) for item in self._graph_pages(path, {"$select": ITEM_SELECT}))
        return found[:MAX_BROWSE_ITEMS]

    def _drive_item(self, ref: DriveRef) -> dict[str, Any]:
        return self.graph("GET", ref.item_path, params={"$select": ITEM_SELECT})

    # -------------------------------------------------------------- copy_document

    def _child_named(self, drive: str, parent: str, name: str) -> dict[str, Any] | None:
        wanted = name.casefold()
        path = f"drives/{_seg(drive)}/items/{_seg(parent)}/children"
        for child in self._graph_pages(path, {"$select": ITEM_SELECT}, limit=5000):
            if str(child.get("name") or "").casefold() == wanted:
                return child
        return None

    def _ensure_folder(self, drive: str, parent: str, segments: list[str]) -> tuple[str, bool]:
        """The id of the folder at `segments` under `parent`, creating what is missing; and whether it was just created."""
        created = False
        for segment in segments:
            existing = None if created else self._child_named(drive, parent, segment)
            if existing is not None:
                if "folder" not in existing:
                    raise ApiConflict(f"Microsoft 365: '{segment}' exists and is a file, not a folder.", vendor_code="nameAlreadyExists")
                parent = str(existing["id"])
                continue
            body = {"name": segment, "folder": {}, "@microsoft.graph.conflictBehavior": "fail"}
            try:
                made = self.graph("POST", f"drives/{_seg(drive)}/items/{_seg(parent)}/children", json=body)
                created = True
            except ApiConflict:  # made meanwhile by a concurrent step: use it
                made = self._child_named(drive, parent, segment)
                if made is None:
                    raise
            parent = str(made["id"])
        return parent, created

    def _monitor_client(self, url: str) -> HttpClient:
        """Graph's copy monitor URL takes no token (it may be on another host): same SSRF guard and session, no auth."""
        parts = urlsplit(url)
        return HttpClient(
            f"{parts.scheme}://{parts.netloc}/",
            auth=None,
            timeout=self.client.timeout,
            max_retries=2,
            url_guard=self.client.url_guard,
            session=self.client.session,
            sleep=self.client.sleep,
            recorder=self.client.recorder,
            connector_key=self.client.connector_key,
            classify=self.client.classify,
        )

    def _await_copy(self, monitor_url: str) -> str:
        """Poll the copy's monitor until it completes (bounded); the new item's id."""
        monitor = self._monitor_client(monitor_url)
        for attempt in range(COPY_POLL_ATTEMPTS):
            status = monitor.get(monitor_url).json() or {}
            state = str(status.get("status") or "")
            if state == "completed" and status.get("resourceId"):
                return str(status["resourceId"])
            if "id" in status and "name" in status:  # a monitor that redirected to the finished item
                return str(status["id"])
            if state == "failed":
                error = status.get("error") or {}
                raise ApiBadRequest(
                    f"Microsoft 365 could not copy the document: {error.get('message') or 'the copy failed'}",
                    vendor_code=str(error.get("code") or "copyFailed"),
                )
            self.client.sleep(COPY_POLL_WAITS[min(attempt, len(COPY_POLL_WAITS) - 1)])
        raise ApiHostError("Microsoft 365 is still copying the document; the step is retried and picks up the finished copy.", vendor_code="copyInProgress")

    def _act_copy_document(self, payload: Mapping[str, Any], *, idempotency_key: str, known_new: bool = False) -> ActionResult:
        source = parse_document_id(payload.get("source"), where="source")
        if source.kind != "item":
            raise ApiBadRequest("Microsoft 365: source must be a file chosen in the file picker, not a site or library.", vendor_code="invalid_document")
        role = SHARE_ROLES.get(str(payload.get("share_role") or "read").strip().lower())
        if role is None:
            raise ApiBadRequest(f"Microsoft 365: share_role '{payload.get('share_role')}' is not read or write.", vendor_code="invalid_role")
        segments = folder_segments(str(payload.get("folder") or ""))
        if not segments:
            raise ApiBadRequest("Microsoft 365: folder is required (e.g. 'Incidents/2026-12-06 Data breach').", vendor_code="invalid_folder")
        original = self._drive_item(source)
        if "folder" in original:
            raise ApiBadRequest(f"Microsoft 365: '{original.get('name')}' is a folder; choose a file to copy.", vendor_code="invalid_document")
        name = clean_name(str(payload.get("name") or "")) or str(original.get("name") or "document")
        if "." not in name and "." in str(original.get("name") or ""):
            name += "." + str(original["name"]).rsplit(".", 1)[1]  # keep the template's file type
        drive = source.drive
        folder_id, folder_is_new = self._ensure_folder(drive, "root", segments)
        # The incident's folder holds one copy per name: a retry (or a re-run) finds it instead of copying twice.
        existing = None if folder_is_new else self._child_named(drive, folder_id, name)
        created = existing is None
        if existing is None:
            body = {"parentReference": {"driveId": drive, "id": folder_id}, "name": name}

            def send() -> dict[str, Any]:
                try:
                    response = self.client.post(self._path(f"{source.item_path}/copy"), json=body, retry=False)
                except ApiConflict:  # nameAlreadyExists: an earlier attempt's copy finished in between
                    return self._child_named(drive, folder_id, name) or {}
                location = response.headers.get("Location")
                if not location:
                    raise ApiHostError("Microsoft 365 accepted the copy without a monitor URL.", vendor_code="copyNoMonitor")
                try:
                    return {"id": self._await_copy(location)}
                except ApiBadRequest as exc:
                    if exc.vendor_code != "nameAlreadyExists":
                        raise
                    return self._child_named(drive, folder_id, name) or {}  # a concurrent step's copy won

            copied = create_once(self.client, send, lambda: self._child_named(drive, folder_id, name), what="document copy")
            if not copied.get("id"):
                raise ApiConflict(f"Microsoft 365: '{name}' exists in the folder and could not be read back.", vendor_code="nameAlreadyExists")
            existing = self._drive_item(DriveRef("item", drive=drive, item=str(copied["id"])))
        item = DriveRef("item", drive=drive, item=str(existing["id"]))
        shared = self._share(item, _emails(payload.get("share_with")), role, str(payload.get("message") or ""), check_existing=not created)
        folder_path = "/".join(segments)
        summary = f"{'Copied' if created else 'Found the copy'} in {folder_path}" + (f"; shared with {len(shared)}" if shared else "")
        tracked = TrackedObject(
            title=str(existing.get("name") or name),
            status="shared" if shared else "copied",
            is_done=True,  # nothing to wait for: the copy exists where the incident's people can open it
            url=str(existing.get("webUrl") or ""),
            details={"folder": folder_path, "shared_with": shared, "role": role},
        )
        return ActionResult(
            external_id=document_id("item", drive, item.item),
            url=str(existing.get("webUrl") or ""),
            data={"name": tracked.title, "folder": folder_path, "folder_id": document_id("item", drive, folder_id), "shared_with": shared},
            created=created,
            tracked=tracked,
            link_text=tracked.title,
            summary=summary,
        )

    def _share(self, item: DriveRef, emails: list[str], role: str, message: str, *, check_existing: bool) -> list[str]:
        """Invite the people who do not have access yet (one invitation call); the addresses now sharing it."""
        if not emails:
            return []
        already: set[str] = set()
        if check_existing:
            already = granted_emails(list(self._graph_pages(f"{item.item_path}/permissions", limit=1000)))
        new = [e for e in emails if e not in already]
        if new:
            body: dict[str, Any] = {"recipients": [{"email": e} for e in new], "roles": [role], "requireSignIn": True, "sendInvitation": True}
            if message:
                body["message"] = message[:2000]
            self.graph("POST", f"{item.item_path}/invite", json=body)
        return emails

    def _undo_copy_document(self, external_id: str) -> ActionResult:
        """Delete the copy; one already gone is fine."""
        ref = parse_document_id(external_id, where="copy")
        try:
            self.graph("DELETE", ref.item_path)
        except ApiNotFound:
            return ActionResult(external_id=external_id, created=False, summary="The copy was already deleted.")
        return ActionResult(external_id=external_id, created=False, summary="Deleted the copy.")

    def _fetch_documents(self, external_ids: list[str]) -> dict[str, TrackedObject]:
        """The copies' current names and links; deleted ones as status "deleted"."""
        found: dict[str, TrackedObject] = {}
        for external_id in external_ids:
            try:
                item = self._drive_item(parse_document_id(external_id, where="copy"))
            except ApiNotFound:
                found[external_id] = TrackedObject(status="deleted", is_done=True)
                continue
            found[external_id] = TrackedObject(title=str(item.get("name") or ""), status="copied", is_done=True, url=str(item.get("webUrl") or ""))
        return found
