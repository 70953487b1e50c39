"""Twilio 2010-04-01 Messages API stand-in: Basic auth, form-encoded sends, paged lists, signed status callbacks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import uuid
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode

import requests
from flask import Blueprint, Response, jsonify, request

from sandbox.server import install_faults
from sandbox.state import STORE

VENDOR = "twilio"
ACCOUNT_SID = "AC" + hashlib.md5(b"bastion-sandbox-account").hexdigest()
AUTH_TOKEN = hashlib.md5(b"bastion-sandbox-auth-token").hexdigest()
FROM_NUMBERS = ("+15005550006", "+447700900123")
MESSAGING_SERVICE_SID = "MG" + hashlib.md5(b"bastion-sandbox-messaging").hexdigest()
E164 = re.compile(r"^\+[1-9]\d{1,14}$")
API = "/2010-04-01"
logger = logging.getLogger(__name__)


def _error(status: int, message: str, code: int | None = None) -> Response:
    code = code or {400: 21201, 401: 20003, 404: 20404, 429: 20429}.get(status, 20500)
    response = jsonify({"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status})
    response.status_code = status
    return response


def _rate_limited(retry_after: int) -> Response:
    response = _error(429, "Too Many Requests", 20429)
    response.headers["Retry-After"] = str(retry_after)
    return response


def _messages() -> Any:
    return STORE.collection(VENDOR, "messages")


def signature(auth_token: str, url: str, params: dict[str, str]) -> str:
    """Twilio's X-Twilio-Signature: base64(HMAC-SHA1(auth token, URL + each POST param name+value sorted by name))."""
    payload = url + "".join(f"{key}{params[key]}" for key in sorted(params))
    return base64.b64encode(hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()).decode()


def seed() -> None:
    with STORE.lock:
        STORE.collection(VENDOR, "accounts")[ACCOUNT_SID] = {
            "sid": ACCOUNT_SID,
            "friendly_name": "Acme Incident Notifications",
            "status": "active",
            "type": "Full",
            "auth_token": AUTH_TOKEN,
            "owner_account_sid": ACCOUNT_SID,
            "date_created": format_datetime(datetime(2024, 1, 8, 9, 0, tzinfo=UTC), usegmt=True),
            "date_updated": format_datetime(datetime(2024, 1, 8, 9, 0, tzinfo=UTC), usegmt=True),
            "uri": f"{API}/Accounts/{ACCOUNT_SID}.json",
            "subresource_uris": {"messages": f"{API}/Accounts/{ACCOUNT_SID}/Messages.json"},
        }


def _public(message: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in message.items() if not k.startswith("_")}


def _deliver_callback(message: dict[str, Any], auth_token: str) -> dict[str, Any]:
    url = message.get("_status_callback")
    if not url:
        return {"status": None, "error": "no StatusCallback"}
    params = {
        "AccountSid": message["account_sid"],
        "ApiVersion": "2010-04-01",
        "From": message["from"] or "",
        "MessageSid": message["sid"],
        "MessageStatus": message["status"],
        "SmsSid": message["sid"],
        "SmsStatus": message["status"],
        "To": message["to"],
    }
    if message.get("error_code"):
        params["ErrorCode"] = str(message["error_code"])
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": signature(auth_token, url, params),
        "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
        "User-Agent": "TwilioProxy/1.1",
    }
    try:
        answer = requests.post(url, data=urlencode(params), headers=headers, timeout=5)
        return {"status": answer.status_code}
    except requests.RequestException as exc:
        logger.warning("sandbox.twilio.callback_failed", extra={"sid": message["sid"], "error": str(exc)})
        return {"status": None, "error": str(exc)}


def blueprints() -> list[Blueprint]:
    api = Blueprint("twilio_api", __name__)
    control = Blueprint("twilio_control", __name__)
    install_faults(api, VENDOR, rate_limited=_rate_limited, error=_error)

    @api.before_request
    def _authenticate():
        auth = request.authorization
        account = STORE.collection(VENDOR, "accounts").get(auth.username if auth else "")
        revoked = STORE.faults_for(VENDOR).revoked
        if not auth or account is None or revoked or not hmac.compare_digest(str(auth.password or ""), account["auth_token"]):
            return _error(401, "Authenticate", 20003)
        path_account = (request.view_args or {}).get("account_sid")
        if path_account is not None and path_account != account["sid"]:
            return _error(404, f"The requested resource {request.path} was not found", 20404)
        return None

    @api.get(f"{API}/Accounts/<account_sid>.json")
    def account(account_sid: str):
        shown = dict(STORE.collection(VENDOR, "accounts")[account_sid])
        shown["auth_token"] = "*" * 28 + shown["auth_token"][-4:]
        return jsonify(shown)

    @api.post(f"{API}/Accounts/<account_sid>/Messages.json")
    def create_message(account_sid: str):
        form = request.form
        to = form.get("To", "")
        if not to:
            return _error(400, "A 'To' phone number is required.", 21604)
        if not E164.match(to.removeprefix("whatsapp:")):
            return _error(400, f"The 'To' number {to} is not a valid phone number.", 21211)
        sender, service = form.get("From"), form.get("MessagingServiceSid")
        if not sender and not service:
            return _error(400, "A 'From' phone number is required.", 21603)
        if sender and sender not in FROM_NUMBERS:
            return _error(400, f"The From phone number {sender} is not a valid, SMS-capable inbound phone number or short code for your account.", 21606)
        if service and service != MESSAGING_SERVICE_SID:
            return _error(400, "The Messaging Service Sid is invalid.", 21701)
        body = form.get("Body", "")
        if not body and not form.getlist("MediaUrl"):
            return _error(400, "Message body is required.", 21602)
        if len(body) > 1600:
            return _error(400, "The concatenated message body exceeds the 1600 character limit.", 21617)
        callback = form.get("StatusCallback")
        if callback and not callback.startswith("http"):
            return _error(400, "The StatusCallback URL is not a valid URL.", 21609)
        now = format_datetime(datetime.now(UTC), usegmt=True)
        sid = "SM" + uuid.uuid4().hex
        message = {
            "sid": sid,
            "account_sid": account_sid,
            "api_version": "2010-04-01",
            "to": to,
            "from": sender or FROM_NUMBERS[0],
            "messaging_service_sid": service,
            "body": body,
            "status": "accepted" if service and not sender else "queued",
            "direction": "outbound-api",
            "num_segments": str(max(1, -(-len(body) // 153) if len(body) > 160 else 1)),
            "num_media": str(len(form.getlist("MediaUrl"))),
            "price": None,
            "price_unit": "USD",
            "error_code": None,
            "error_message": None,
            "date_created": now,
            "date_updated": now,
            "date_sent": None,
            "uri": f"{API}/Accounts/{account_sid}/Messages/{sid}.json",
            "subresource_uris": {"media": f"{API}/Accounts/{account_sid}/Messages/{sid}/Media.json"},
            "_status_callback": callback,
        }
        with STORE.lock:
            _messages()[sid] = message
        STORE.record_created(VENDOR, "message", sid, f"SMS to {to}: {body[:60]}")
        with STORE.lock:
            knob = STORE.collection(VENDOR, "knobs").get("fail_after_create")
            if knob and knob["count"] > 0:
                knob["count"] -= 1
                return _error(knob["status"], "injected failure after the message was accepted (sandbox)", 20500)
        response = jsonify(_public(message))
        response.status_code = 201
        return response

    @api.get(f"{API}/Accounts/<account_sid>/Messages.json")
    def list_messages(account_sid: str):
        rows = [m for m in reversed(_messages().values()) if m["account_sid"] == account_sid]
        for field, key in (("To", "to"), ("From", "from")):
            if request.args.get(field):
                rows = [m for m in rows if m[key] == request.args[field]]

        def sent_day(message: dict[str, Any]) -> str | None:
            return parsedate_to_datetime(message["date_sent"]).date().isoformat() if message["date_sent"] else None

        for param, test in (("DateSent", lambda d, v: d == v), ("DateSent>", lambda d, v: d >= v), ("DateSent<", lambda d, v: d <= v)):
            if request.args.get(param):
                value = request.args[param][:10]
                rows = [m for m in rows if sent_day(m) and test(sent_day(m), value)]
        try:
            size = min(max(int(request.args.get("PageSize", 50)), 1), 1000)
            page = max(int(request.args.get("Page", 0)), 0)
        except ValueError:
            return _error(400, "PageSize and Page must be integers", 20001)
        chunk = rows[page * size : (page + 1) * size]
        query = {k: v for k, v in request.args.items() if k not in ("Page", "PageSize", "PageToken")}

        def page_uri(number: int) -> str:
            extra = {"PageToken": f"PA{chunk[-1]['sid']}"} if number > page and chunk else {}
            return f"{API}/Accounts/{account_sid}/Messages.json?{urlencode({**query, 'PageSize': size, 'Page': number, **extra})}"

        more = (page + 1) * size < len(rows)
        return jsonify(
            {
                "messages": [_public(m) for m in chunk],
                "page": page,
                "page_size": size,
                "start": page * size,
                "end": page * size + max(len(chunk) - 1, 0),
                "uri": page_uri(page),
                "first_page_uri": page_uri(0),
                "next_page_uri": page_uri(page + 1) if more else None,
                "previous_page_uri": page_uri(page - 1) if page > 0 else None,
            }
        )

    @api.get(f"{API}/Accounts/<account_sid>/Messages/<sid>.json")
    def get_message(account_sid: str, sid: str):
        message = _messages().get(sid)
        if message is None or message["account_sid"] != account_sid:
            return _error(404, f"The requested resource {request.path} was not found", 20404)
        return jsonify(_public(message))

    @api.post(f"{API}/Accounts/<account_sid>/Messages/<sid>.json")
    def update_message(account_sid: str, sid: str):
        """UpdateMessage: Body="" redacts a finished message's text; Status=canceled cancels a scheduled one."""
        with STORE.lock:
            message = _messages().get(sid)
            if message is None or message["account_sid"] != account_sid:
                return _error(404, f"The requested resource {request.path} was not found", 20404)
            if "Body" in request.form:
                if request.form["Body"] != "":
                    return _error(400, "The Body can only be set to an empty string (to redact the message)", 21619)
                if message["status"] in ("accepted", "scheduled", "queued", "sending"):
                    return _error(400, "Cannot redact the body of a message that is still being sent", 20009)
                message["body"] = ""
            if "Status" in request.form:
                if request.form["Status"] != "canceled":
                    return _error(400, "Status can only be set to canceled", 21201)
                if message["status"] != "scheduled":
                    return _error(400, "Only a scheduled message can be canceled", 30409)
                message["status"] = "canceled"
            message["date_updated"] = format_datetime(datetime.now(UTC), usegmt=True)
            return jsonify(_public(message))

    @api.delete(f"{API}/Accounts/<account_sid>/Messages/<sid>.json")
    def delete_message(account_sid: str, sid: str):
        with STORE.lock:
            message = _messages().get(sid)
            if message is None or message["account_sid"] != account_sid:
                return _error(404, f"The requested resource {request.path} was not found", 20404)
            if message["status"] in ("accepted", "scheduled", "queued", "sending"):
                return _error(400, "Cannot delete a message that is still being sent", 20009)
            del _messages()[sid]
        return Response(status=204)

    @control.post("/_sandbox/messages/<sid>/status")
    def control_status(sid: str):
        """The carrier reports progress: update the message and POST a signed status callback."""
        body = request.get_json(silent=True) or {}
        message = _messages().get(sid)
        status = body.get("status")
        if message is None or status not in ("sending", "sent", "delivered", "undelivered", "failed", "read"):
            return jsonify({"error": "unknown message or status"}), 400
        with STORE.lock:
            message["status"] = status
            message["date_updated"] = format_datetime(datetime.now(UTC), usegmt=True)
            if status in ("sent", "delivered", "read") and not message["date_sent"]:
                message["date_sent"] = message["date_updated"]
            if status in ("undelivered", "failed"):
                message["error_code"] = int(body.get("error_code", 30003))
                message["error_message"] = "Unreachable destination handset"
            auth_token = STORE.collection(VENDOR, "accounts")[message["account_sid"]]["auth_token"]
        return jsonify({"message": _public(message), "callback": _deliver_callback(message, auth_token)})

    @control.get("/_sandbox/account")
    def control_account():
        """The sandbox account's credentials (what Twilio's console shows on the dashboard)."""
        return jsonify(
            {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "from_numbers": list(FROM_NUMBERS), "messaging_service_sid": MESSAGING_SERVICE_SID}
        )

    @control.put("/_sandbox/knobs")
    def knobs():
        body = request.get_json(silent=True) or {}
        with STORE.lock:
            if "fail_after_create" in body:
                STORE.collection(VENDOR, "knobs")["fail_after_create"] = {"count": int(body["fail_after_create"]), "status": int(body.get("status", 502))}
        return jsonify({"ok": True})

    return [api, control]
