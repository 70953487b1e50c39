"""DocuSign's envelope rules the declared engine cannot state (sandbox/declared/docusign.yaml names this module).

A template's roles filled by templateRoles, voiding (only sent or delivered envelopes, with a reason), signers signing or
declining as people do in DocuSign, and Connect: every status change POSTed as a JSON SIM event signed with each active
HMAC key (X-DocuSign-Signature-1..N = base64 HMAC-SHA256 of the raw body), as FACTS §19 describes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import uuid
from datetime import UTC, datetime
from typing import Any

import requests
from flask import Blueprint, jsonify, request

from sandbox.declared.records import RecordError, iso
from sandbox.state import STORE

logger = logging.getLogger(__name__)
VENDOR = "docusign"
ACCOUNT_ID = "8f2a6c1e-4b7d-4e0a-9c3f-2d1e5a7b9c01"  # Acme Corp, the default account
OTHER_ACCOUNT_ID = "8f2a6c1e-4b7d-4e0a-9c3f-2d1e5a7b9c02"  # a second account of the same user (not the default)
USER_ID = "4c7d9e2a-1b3f-4a6e-8d5c-0f9e8d7c6b5a"
USER = {"name": "Dana Dealmaker", "email": "dana.dealmaker@acme.example"}
SENDER = {"userName": USER["name"], "userId": USER_ID, "accountId": ACCOUNT_ID, "email": USER["email"]}
STATUS_EVENTS = {"sent": "envelope-sent", "delivered": "envelope-delivered", "completed": "envelope-completed", "declined": "envelope-declined"}
STATUS_EVENTS["voided"] = "envelope-voided"
VOIDABLE = ("sent", "delivered")


def _now() -> str:
    return iso(datetime.now(UTC))


# ---- the engine's rule points -------------------------------------------------------------------------------------------


def before_request(engine: Any, route: Any, params: dict[str, str], query: dict[str, str]) -> None:
    """Every call names an account of the token's user in its path."""
    if params.get("accountId") not in (ACCOUNT_ID, OTHER_ACCOUNT_ID):
        raise RecordError(400, "The specified User is not a member of the specified Account.", "USER_DOES_NOT_BELONG_TO_SPECIFIED_ACCOUNT")


def before_create(engine: Any, collection: Any, data: dict[str, Any]) -> dict[str, Any]:
    """An envelope from a template: templateRoles fill the template's roles; the signers are notified when status is sent."""
    if collection.name != "envelopes":
        raise RecordError(400, "Templates are made in DocuSign's web app in this stand-in.")
    status = str(data.get("status") or "created")
    if status not in ("created", "sent"):
        raise RecordError(400, f"Invalid envelope status '{status}': an envelope is created as 'created' (a draft) or 'sent'.", "INVALID_ENVELOPE_STATUS")
    template = engine.records.table("templates").get(str(data.get("templateId") or ""))
    if template is None:
        if data.get("templateId"):
            raise RecordError(400, f"Invalid template ID {data['templateId']}.", "TEMPLATE_ID_INVALID")
        raise RecordError(400, "This stand-in sends envelopes from templates: give templateId and templateRoles.", "ENVELOPE_IS_INCOMPLETE")
    roles = {str(s.get("roleName", "")).lower(): s for s in template["recipients"]["signers"]}
    signers = []
    for index, given in enumerate(data.get("templateRoles") or []):
        if not isinstance(given, dict):
            raise RecordError(400, f"templateRoles[{index}] is not an object.", "INVALID_REQUEST_BODY")
        role = roles.get(str(given.get("roleName") or "").lower())
        if role is None:
            names = ", ".join(str(s.get("roleName")) for s in template["recipients"]["signers"])
            raise RecordError(400, f"templateRoles[{index}]: '{given.get('roleName')}' is not a role of this template ({names}).", "INVALID_ROLE_NAME")
        email, name = str(given.get("email") or ""), str(given.get("name") or "")
        if "@" not in email or not name:
            raise RecordError(400, f"templateRoles[{index}] needs a name and a valid email.", "INVALID_EMAIL_ADDRESS_FOR_RECIPIENT")
        signers.append(
            {
                "recipientId": role["recipientId"],
                "recipientIdGuid": str(uuid.uuid4()),
                "roleName": role["roleName"],
                "name": name,
                "email": email,
                "routingOrder": str(given.get("routingOrder") or role.get("routingOrder") or "1"),
                "recipientType": "signer",
                "status": status,
                **({"sentDateTime": _now()} if status == "sent" else {}),
            }
        )
    if not signers:
        raise RecordError(
            400, "The Envelope is not Complete. A Complete Envelope Requires Documents, Recipients, Tabs, and a Subject Line.", "ENVELOPE_IS_INCOMPLETE"
        )
    subject = str(data.get("emailSubject") or template.get("emailSubject") or "")
    if not subject:
        raise RecordError(
            400, "The Envelope is not Complete. A Complete Envelope Requires Documents, Recipients, Tabs, and a Subject Line.", "ENVELOPE_IS_INCOMPLETE"
        )
    given_fields = (data.get("customFields") or {}).get("textCustomFields") or []
    text_fields = [
        {
            "fieldId": str(10000 + index),
            "name": str(f.get("name", "")),
            "value": str(f.get("value", "")),
            "show": str(f.get("show", "false")),
            "required": "false",
        }
        for index, f in enumerate(given_fields)
        if isinstance(f, dict)
    ]
    now = _now()
    record = {
        "status": status,
        "emailSubject": subject[:100],
        "emailBlurb": str(data.get("emailBlurb") or ""),
        "sender": dict(SENDER),
        "statusChangedDateTime": now,
        "customFields": {"textCustomFields": text_fields, "listCustomFields": []},
        "recipients": {"signers": signers, "carbonCopies": [], "recipientCount": str(len(signers))},
    }
    if status == "sent":
        record.update(sentDateTime=now, initialSentDateTime=now)
    return record


def create_answer(engine: Any, collection: Any, record: dict[str, Any]) -> dict[str, Any]:
    """201 envelopeSummary: the id, status and where the envelope lives."""
    uri = f"/envelopes/{record['envelopeId']}"
    with STORE.lock:
        record["envelopeUri"] = uri
    return {"envelopeId": record["envelopeId"], "status": record["status"], "statusDateTime": record["statusChangedDateTime"], "uri": uri}


def before_update(engine: Any, collection: Any, record: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """PUT status voided (with a reason) voids a sent or delivered envelope; PUT status sent sends a draft."""
    if collection.name != "envelopes":
        raise RecordError(400, "Templates are edited in DocuSign's web app in this stand-in.")
    wanted = data.get("status")
    now = _now()
    if wanted == "voided":
        if record["status"] not in VOIDABLE:
            raise RecordError(400, "Only envelopes in the 'Sent' or 'Delivered' states may be voided.", "ENVELOPE_CANNOT_VOID_INVALID_STATE")
        reason = str(data.get("voidedReason") or "").strip()
        if not reason:
            raise RecordError(400, "A voidedReason is required to void an envelope.", "INVALID_REQUEST_BODY")
        return {"status": "voided", "voidedReason": reason[:200], "voidedDateTime": now, "statusChangedDateTime": now}
    if wanted == "sent" and record["status"] == "created":
        signers = [{**s, "status": "sent", "sentDateTime": now} for s in record["recipients"]["signers"]]
        return {
            "status": "sent",
            "sentDateTime": now,
            "initialSentDateTime": now,
            "statusChangedDateTime": now,
            "recipients": {**record["recipients"], "signers": signers},
        }
    if wanted is not None and wanted != record["status"]:
        raise RecordError(400, f"An envelope that is '{record['status']}' cannot be set to '{wanted}'.", "INVALID_ENVELOPE_STATUS")
    allowed = {k: v for k, v in data.items() if k in ("emailSubject", "emailBlurb")}
    if allowed and record["status"] != "created":
        raise RecordError(400, "Only a draft envelope's subject and message can be changed.", "ENVELOPE_NOT_IN_CORRECTABLE_STATE")
    return allowed


def update_answer(engine: Any, collection: Any, record: dict[str, Any]) -> dict[str, Any]:
    return {"envelopeId": record["envelopeId"]}


def after_change(engine: Any, collection: Any, record: dict[str, Any], action: str, changed: list[str]) -> None:
    """A status change is a Connect event (a draft's creation is not)."""
    if collection.name != "envelopes" or action == "deleted":
        return
    if (action == "added" and record["status"] == "sent") or "status" in changed:
        connect_deliver(record, STATUS_EVENTS.get(record["status"], f"envelope-{record['status']}"))


# ---- Connect -------------------------------------------------------------------------------------------------------------


def connect_body(record: dict[str, Any], event: str, *, recipient_id: str = "") -> bytes:
    """A JSON SIM event (docusign_connect.schema-v2.json): event, uri, retryCount, configurationId, data.envelopeSummary."""
    summary = {k: v for k, v in record.items() if not k.startswith("_")}
    payload = {
        "event": event,
        "apiVersion": "v2.1",
        "uri": f"/restapi/v2.1/accounts/{ACCOUNT_ID}/envelopes/{record['envelopeId']}",
        "retryCount": 0,
        "configurationId": 10501,
        "generatedDateTime": _now(),
        "data": {"accountId": ACCOUNT_ID, "userId": USER_ID, "envelopeId": record["envelopeId"], "envelopeSummary": summary},
    }
    if recipient_id:
        payload["data"]["recipientId"] = recipient_id
    return json.dumps(payload).encode()


def connect_signatures(keys: list[str], body: bytes) -> dict[str, str]:
    """One header per active key: X-DocuSign-Signature-1 is the first key's base64 HMAC-SHA256 of the raw body."""
    return {f"X-DocuSign-Signature-{n}": base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode() for n, key in enumerate(keys, 1)}


def connect_deliver(record: dict[str, Any], event: str, *, recipient_id: str = "", forge: bool = False) -> dict[str, Any] | None:
    """POST the event to the configured Connect URL (when it subscribes to it); every attempt is kept for the tests."""
    with STORE.lock:
        config = dict(STORE.collection(VENDOR, "_connect").get("config") or {})
    if not config.get("url") or event not in (config.get("events") or [event]):
        return None
    body = connect_body(record, event, recipient_id=recipient_id)
    keys = [secrets.token_hex(16) for _ in config.get("keys") or [""]] if forge else list(config.get("keys") or [])
    headers = {"Content-Type": "application/json", **connect_signatures(keys, body)}
    if keys:
        headers["X-Authorization-Digest"] = "HMACSHA256"
    outcome: dict[str, Any] = {"event": event, "envelopeId": record["envelopeId"], "body": body.decode(), "headers": headers, "forged": forge}
    try:
        outcome["status"] = requests.post(config["url"], data=body, headers=headers, timeout=5).status_code
    except requests.RequestException as error:
        logger.warning("sandbox.docusign.connect_failed", extra={"envelope": record["envelopeId"], "event": event})
        outcome["status"], outcome["error"] = None, str(error)
    with STORE.lock:
        STORE.collection(VENDOR, "_connect").setdefault("deliveries", []).append(outcome)
    return outcome


# ---- what people do in DocuSign (the stand-in's controls, not the vendor's API) ----------------------------------------


def _engine() -> Any:
    from sandbox.declared import declared_vendors

    return next(v for v in declared_vendors() if v.VENDOR == VENDOR)


def controls_blueprint() -> Blueprint:
    control = Blueprint("docusign_envelope_controls", __name__)

    @control.put("/_sandbox/connect")
    def connect_configure():
        """The account's Connect configuration as an admin sets it: URL, HMAC keys (rotation = two keys), events."""
        body = request.get_json(force=True) or {}
        config = {"url": str(body.get("url") or ""), "keys": [str(k) for k in body.get("keys") or []], "events": list(body.get("events") or [])}
        with STORE.lock:
            STORE.collection(VENDOR, "_connect")["config"] = config
        return jsonify(config)

    @control.get("/_sandbox/connect/deliveries")
    def connect_deliveries():
        with STORE.lock:
            return jsonify(list(STORE.collection(VENDOR, "_connect").get("deliveries") or []))

    @control.post("/_sandbox/connect/deliver")
    def connect_again():
        """Deliver an envelope's current state now; `forge` signs it with keys that are not the account's."""
        body = request.get_json(force=True) or {}
        record = _engine().records.table("envelopes").get(str(body.get("envelopeId") or ""))
        if record is None:
            return jsonify({"errorCode": "ENVELOPE_DOES_NOT_EXIST", "message": "No such envelope."}), 404
        event = str(body.get("event") or STATUS_EVENTS.get(record["status"], "envelope-sent"))
        return jsonify(connect_deliver(record, event, forge=bool(body.get("forge"))) or {})

    @control.post("/_sandbox/envelopes/<envelope_id>/recipients/<path:email>/<decision>")
    def recipient_acts(envelope_id: str, email: str, decision: str):
        """A signer opens (delivered), signs (completed) or declines the envelope; the envelope's status follows."""
        engine = _engine()
        collection = engine.d.collections["envelopes"]
        record = engine.records.table("envelopes").get(envelope_id)
        if record is None or decision not in ("view", "sign", "decline"):
            return jsonify({"errorCode": "ENVELOPE_DOES_NOT_EXIST", "message": "No such envelope or decision."}), 404
        now = _now()
        with STORE.lock:
            signer = next((s for s in record["recipients"]["signers"] if s["email"].lower() == email.lower()), None)
            if signer is None or record["status"] not in VOIDABLE:
                return jsonify({"errorCode": "INVALID_RECIPIENT", "message": "Not a signer of an envelope awaiting signatures."}), 400
            if decision == "view":
                signer.update(status="delivered", deliveredDateTime=now)
                new_status = "delivered"
            elif decision == "sign":
                signer.update(status="completed", signedDateTime=now, deliveredDateTime=signer.get("deliveredDateTime") or now)
                done = all(s["status"] == "completed" for s in record["recipients"]["signers"])
                new_status = "completed" if done else "delivered"
            else:
                signer.update(status="declined", declinedDateTime=now, declinedReason=str((request.get_json(silent=True) or {}).get("reason") or ""))
                new_status = "declined"
            changes = {"status": new_status, "statusChangedDateTime": now, "lastModifiedDateTime": now}
            changes.update({"completed": {"completedDateTime": now}, "declined": {"declinedDateTime": now}}.get(new_status, {}))
            changes.update({"deliveredDateTime": record.get("deliveredDateTime") or now} if new_status == "delivered" else {})
            status_changed = record["status"] != new_status
            record.update(changes)
        if decision == "sign" and not status_changed:
            connect_deliver(record, "recipient-completed", recipient_id=signer["recipientId"])
        if status_changed:
            engine.changed(collection, record, "changed", ["status"])
        return jsonify(record)

    return control
