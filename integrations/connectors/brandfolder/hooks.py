"""What Brandfolder's spec.yaml cannot say: the forms' asset picker (collections as folders, assets as files) and
share_collection, which invites each person once (the collection's permissions and invitations are read first) and is
undone by deleting the invitations it sent."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from integrations.connectors.base import ActionResult, DocumentItem
from integrations.connectors.kit.once import create_once
from integrations.errors import ApiBadRequest, ApiError, ApiForbidden, ApiNotFound

PERMISSIONS = ("guest", "collaborator", "admin")  # "owner" is only valid on an organization (Brandfolder's document)
MAX_EMAILS = 50
MAX_PAGES = 30  # 30 pages of 100: a collection's picker listing or access list never reads more
MAX_ITEMS = 200
COLLECTION = "collection:"
ASSET = "asset:"


# ---- shared ------------------------------------------------------------------------------------------------------------


def _resource_id(value: Any, what: str) -> str:
    """A Brandfolder id as given (or as the picker's "collection:<id>"): letters, digits, - and _ only (it goes in a path)."""
    text = str(value or "").strip().removeprefix(COLLECTION)
    if not text or len(text) > 100 or not all(c.isascii() and (c.isalnum() or c in "-_") for c in text):
        raise ApiBadRequest(f"Not a Brandfolder {what} id: {text[:100]!r}")
    return text


def _pages(connector: Any, request: str, **names: Any) -> Iterator[dict[str, Any]]:
    """Each page's body of a page/per list, until meta.total_pages (at most MAX_PAGES)."""
    for number in range(1, MAX_PAGES + 1):
        body = connector.send_scoped({"use": request}, connector.scope(page=number, **names))["body"]
        if not isinstance(body, dict) or not isinstance(body.get("data"), list):
            raise ApiError(f"Brandfolder answered {request.replace('_', ' ')} without a data list.")
        yield body
        if number >= int((body.get("meta") or {}).get("total_pages") or 1):
            return


def _attributes(resource: Mapping[str, Any]) -> Mapping[str, Any]:
    return resource.get("attributes") or {}


def _resource(connector: Any, request: str, **names: Any) -> Mapping[str, Any]:
    """One resource's `data`, checked at the border: an answer without it is the vendor's fault, never a crash here."""
    body = connector.send_scoped({"use": request}, connector.scope(**names))["body"]
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict):
        raise ApiError(f"Brandfolder answered {request.replace('_', ' ')} without a data object.")
    return data


# ---- the asset picker ----------------------------------------------------------------------------------------------------


def _asset_item(asset: Mapping[str, Any], where: str) -> DocumentItem:
    attributes = _attributes(asset)
    return DocumentItem(
        id=f"{ASSET}{asset.get('id')}", name=str(attributes.get("name") or ""), is_folder=False, path=where, url=str(attributes.get("thumbnail_url") or "")
    )


def browse_documents(connector: Any, folder: str = "", *, query: str = "") -> list[DocumentItem]:
    """The top: the brandfolder's collections as folders (a query searches every asset); a collection: its assets."""
    brandfolder = _resource(connector, "brandfolder")
    top = str(_attributes(brandfolder).get("name") or "Brandfolder")
    items: list[DocumentItem] = []
    if not folder and not query:
        for body in _pages(connector, "collections_page"):
            items += [
                DocumentItem(id=f"{COLLECTION}{c.get('id')}", name=str(_attributes(c).get("name") or ""), is_folder=True, path=top)
                for c in body.get("data") or []
            ]
    elif not folder:
        for body in _pages(connector, "brandfolder_assets_page", search=query):
            items += [_asset_item(asset, top) for asset in body.get("data") or []]
    else:
        if not str(folder).startswith(COLLECTION):
            raise ApiBadRequest("Open a collection of the listing (its id starts with 'collection:').")
        collection_id = _resource_id(folder, "collection")
        collection = _resource(connector, "collection", id=collection_id)
        where = f"{top} / {_attributes(collection).get('name') or ''}"
        for body in _pages(connector, "collection_assets_page", id=collection_id, search=query or None):
            items += [_asset_item(asset, where) for asset in body.get("data") or []]
    return items[:MAX_ITEMS]


# ---- share_collection ----------------------------------------------------------------------------------------------------


def _email(value: Any) -> str:
    """A plain e-mail address, lower-cased; checked without a regex (user text)."""
    text = str(value or "").strip().lower()
    local, at, domain = text.partition("@")
    if not at or not local or "." not in domain.strip(".") or "@" in domain or len(text) > 254 or any(c.isspace() or c in "<>,;\"'" for c in text):
        raise ApiBadRequest(f"Not an e-mail address: {text[:254]!r}")
    return text


def share_input(payload: Mapping[str, Any]) -> tuple[str, list[str], str, str]:
    """(collection id, e-mails, permission, message) from the step's payload, refused with a clear message when wrong."""
    collection_id = _resource_id(payload.get("collection"), "collection")
    raw = payload.get("emails")
    raw = str(raw).replace(";", ",").split(",") if isinstance(raw, str) else list(raw or [])
    emails = list(dict.fromkeys(_email(e) for e in raw if str(e).strip()))
    if not emails:
        raise ApiBadRequest("Name at least one person to share the Brandfolder collection with (emails).")
    if len(emails) > MAX_EMAILS:
        raise ApiBadRequest(f"At most {MAX_EMAILS} people can be invited by one step; {len(emails)} were given.")
    permission = str(payload.get("permission") or "guest").strip().lower()
    if permission not in PERMISSIONS:
        raise ApiBadRequest(f"A collection is shared as {', '.join(PERMISSIONS)} (not {permission[:40]!r}).")
    message = " ".join(str(payload.get("message") or "").split())[:1000]
    return collection_id, emails, permission, message


def _invitations(connector: Any, collection_id: str) -> dict[str, str]:
    """The collection's pending invitations: e-mail → invitation id."""
    found: dict[str, str] = {}
    for body in _pages(connector, "collection_invitations_page", id=collection_id):
        for invitation in body.get("data") or []:
            found.setdefault(str(_attributes(invitation).get("email") or "").lower(), str(invitation.get("id")))
    return found


def _members(connector: Any, collection_id: str) -> set[str]:
    """E-mails of the people who already have a permission on the collection (users come in `included`)."""
    emails: set[str] = set()
    for body in _pages(connector, "collection_permissions_page", id=collection_id):
        users = {str(u.get("id")): str(_attributes(u).get("email") or "").lower() for u in body.get("included") or [] if u.get("type") == "users"}
        for permission in body.get("data") or []:
            user = ((permission.get("relationships") or {}).get("user") or {}).get("id")
            if str(user) in users:
                emails.add(users[str(user)])
    return emails


def share_collection(connector: Any, action: str, payload: Mapping[str, Any], *, idempotency_key: str, known_new: bool = False) -> ActionResult:
    """Invite each e-mail not yet a member nor invited; a create whose answer was lost is looked for before it is resent."""
    collection_id, emails, permission, message = share_input(payload)
    collection = _resource(connector, "collection", id=collection_id)
    name = str(_attributes(collection).get("name") or collection_id)
    members, invited = _members(connector, collection_id), _invitations(connector, collection_id)
    already = [e for e in emails if e in members or e in invited]
    sent: list[str] = []
    for email in (e for e in emails if e not in already):
        invite = {"email": email, "permission": permission, "message": message or None}

        def send(invite: dict[str, Any] = invite) -> str:
            answer = connector.send_scoped({"use": "invite"}, connector.scope(id=collection_id, item=invite), retry=False)
            created = (answer["body"] or {}).get("data") if isinstance(answer["body"], dict) else None
            if not isinstance(created, dict) or not created.get("id"):
                raise ApiError("Brandfolder answered the invitation without its id.")
            return str(created["id"])

        def find(email: str = email) -> str | None:
            return _invitations(connector, collection_id).get(email)

        sent.append(create_once(connector.client, send, find, what="brandfolder.invitation"))
    count = len(emails) - len(already)
    summary = f"{count} invited to {name}" + (f", {len(already)} already had access" if already else "")
    return ActionResult(
        external_id=collection_id,
        # data.key is what undo receives: the invitations this step sent.
        data={"key": ",".join(sent), "collection": name, "invited": [e for e in emails if e not in already], "already": already, "permission": permission},
        created=bool(sent),
        link_text=name,
        summary=summary,
    )


def undo_share(connector: Any, action: str, *, external_id: str, key: str = "", payload: Any = None, reason: str = "", idempotency_key: str) -> ActionResult:
    """Delete the invitations the step sent; one already gone (accepted, withdrawn) counts as undone."""
    collection_id = _resource_id(external_id, "collection")
    removed = 0
    for invitation_id in [i for i in str(key or "").split(",") if i]:
        invitation_id = _resource_id(invitation_id, "invitation")
        try:
            connector.send({"use": "invitation_delete"}, connector.scope(id=invitation_id))
            removed += 1
        except ApiNotFound:
            continue
        except ApiForbidden:
            # Brandfolder answers 403 for a deleted resource too: gone from the collection's invitations means undone.
            if invitation_id in _invitations(connector, collection_id).values():
                raise
    return ActionResult(external_id=collection_id, created=False, data={"status": "invitations withdrawn"}, summary=f"{removed} invitation(s) withdrawn")
