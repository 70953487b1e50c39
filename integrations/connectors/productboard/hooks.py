"""What Productboard's spec.yaml cannot say: features named by name looked up one request each before the launch note is
created once (a loop), and the webhook check, which is a static Authorization header compared in constant time, not an HMAC."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import re2

from integrations.connectors.base import ActionResult, WebhookRequest
from integrations.connectors.declarative.runtime import select
from integrations.connectors.kit.markers import idempotency_marker
from integrations.connectors.kit.once import create_once
from integrations.connectors.kit.signatures import equal_secret, require_header
from integrations.errors import ApiBadRequest, ApiNotFound, WebhookRejected

SOURCE_SYSTEM = "bastion"  # metadata.source.system of every note Bastion creates; recordId is the step's marker
UUID = re2.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
FEATURE_TYPES = ("feature", "subfeature")
MAX_FEATURES = 50


def _feature_id(connector: Any, wanted: str) -> str:
    """A feature's id from its id or its exact name; a 4xx naming it when there is none or more than one."""
    if UUID.match(wanted):
        try:
            answer = connector.send_scoped({"path": "entities/{{ wanted }}"}, connector.scope(wanted=wanted))
        except ApiNotFound:
            raise ApiBadRequest(f"Productboard has no feature with id {wanted}.") from None
        if (answer["body"].get("data") or {}).get("type") not in FEATURE_TYPES:
            raise ApiBadRequest(f"Productboard entity {wanted} is not a feature.")
        return wanted
    request = {"path": "entities", "query": {"type[]": "feature", "name": "{{ wanted }}"}}
    found = select("$.data", connector.send_scoped(request, connector.scope(wanted=wanted))["body"])
    if len(found) != 1:
        raise ApiBadRequest(f"Productboard has {'no' if not found else len(found)} features named {wanted!r}: name one by its id.")
    return str(found[0]["id"])


def _result(note: Mapping[str, Any], feature_ids: list[str], *, created: bool) -> ActionResult:
    links = note.get("links") or {}
    return ActionResult(
        external_id=str(note["id"]),
        url=str(links.get("html") or ""),
        data={"note": str(note["id"]), "features": feature_ids},
        created=created,
        link_text=str((note.get("fields") or {}).get("name") or "Launch note"),
        summary=f"Launch linked to {len(feature_ids)} Productboard feature{'s' if len(feature_ids) != 1 else ''}",
    )


def link_features(connector: Any, action: str, payload: Mapping[str, Any], *, idempotency_key: str, known_new: bool = False) -> ActionResult:
    """A note describing the launch, linked to each feature in one create (relationships), found again by its marker."""
    title = str(payload.get("launch_title") or "").strip()
    url = str(payload.get("launch_url") or "").strip()
    features = payload.get("features")
    if not title:
        raise ApiBadRequest("Linking a launch to Productboard features needs a launch title.")
    if url and not url.lower().startswith(("https://", "http://")):
        raise ApiBadRequest("The launch URL must be an http(s) URL.")
    if not isinstance(features, list) or not features or not all(isinstance(f, str) and f.strip() for f in features):
        raise ApiBadRequest("Name at least one Productboard feature (by id or exact name).")
    if len(features) > MAX_FEATURES:
        raise ApiBadRequest(f"At most {MAX_FEATURES} features can be linked to one launch.")
    marker = idempotency_marker(idempotency_key)
    find_request = {"path": "notes", "query": {"metadata[source][system]": SOURCE_SYSTEM, "metadata[source][recordId]": "{{ marker }}"}}

    def find() -> ActionResult | None:
        found = select("$.data", connector.send_scoped(find_request, connector.scope(marker=marker))["body"])
        if not found:
            return None
        targets = [r.get("target", {}).get("id") for r in ((found[0].get("relationships") or {}).get("data") or [])]
        return _result(found[0], [str(t) for t in targets if t], created=False)

    if not known_new:
        existing = find()
        if existing is not None:
            return existing
    feature_ids = list(dict.fromkeys(_feature_id(connector, str(f).strip()) for f in features))
    content = f"<p>Launch: <b>{_escape(title)}</b></p>" + (f'<p><a href="{_escape(url)}">{_escape(url)}</a></p>' if url else "")
    source = {"system": SOURCE_SYSTEM, "recordId": marker, **({"url": url} if url else {})}
    note = {
        "type": "textNote",
        "fields": {"name": title, "content": content},
        "metadata": {"source": source},
        "relationships": [{"type": "link", "target": {"id": feature_id, "type": "link"}} for feature_id in feature_ids],
    }
    create = {"method": "POST", "path": "notes", "json": {"data": "{{ note }}"}}

    def send() -> ActionResult:
        body = connector.send_scoped(create, connector.scope(note=note), retry=False)["body"]
        return _result({**(body.get("data") or {}), "fields": {"name": title}}, feature_ids, created=True)

    # Productboard has no idempotency key: after an ambiguous failure the note is looked for by its marker before a resend.
    return create_once(connector.client, send, find, attempts=4, what="productboard.link_features")


def _escape(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def verify_webhook(cls: Any, request: WebhookRequest, *, secret: str, config: Mapping[str, Any] | None = None) -> None:
    """Productboard signs nothing: its notification carries the Authorization value Bastion registered (Bearer <secret>)."""
    received = require_header(request.header("Authorization"), "Authorization", cls.manifest.name)
    if not secret or not equal_secret(received.strip(), f"Bearer {secret}"):
        raise WebhookRejected(401, "bad_signature", "Productboard: the Authorization header does not match this integration's webhook secret.")
