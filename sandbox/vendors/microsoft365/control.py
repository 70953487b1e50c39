"""The sandbox's own knobs for the Graph stand-in (/microsoft365/_control/...): what a person or an admin would do in Microsoft 365."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request

from sandbox.vendors.microsoft365.common import col, knobs

KNOBS = {"application_access_policy": bool, "app_permissions": list, "access_ttl": int, "copy_in_progress_polls": int, "fail_after_create": dict}


def blueprint() -> Blueprint:
    bp = Blueprint("microsoft365_control", __name__)

    @bp.route("/_control/knobs", methods=["GET", "PUT"])
    def control_knobs():
        """application_access_policy (app-only online meetings), app_permissions (what admin consent granted), access_ttl,
        copy_in_progress_polls, fail_after_create ({"count", "status"}: events, channels and messages made but answered 5xx)."""
        if request.method == "PUT":
            body: dict[str, Any] = request.get_json(silent=True) or {}
            unknown = set(body) - set(KNOBS)
            if unknown or not all(isinstance(v, KNOBS[k]) for k, v in body.items()):
                return jsonify({"error": f"knobs are {sorted(KNOBS)} with types {[t.__name__ for t in KNOBS.values()]}"}), 400
            knobs().update(body)
        return jsonify(knobs())

    @bp.post("/_control/events/<event_id>/respond")
    def control_respond(event_id: str):
        """Simulate an attendee answering in Outlook: {"email": ..., "response": "accepted" | "declined" | "tentativelyAccepted"}."""
        from sandbox.vendors.microsoft365.calendar import respond

        body = request.get_json(silent=True) or {}
        event, problem = respond(event_id, str(body.get("email") or ""), str(body.get("response") or ""))
        if event is None:
            return jsonify({"error": problem}), 404 if problem in ("no such event",) or "not an attendee" in problem else 400
        return jsonify(event)

    @bp.post("/_control/subscriptions/<subscription_id>/lifecycle")
    def control_lifecycle(subscription_id: str):
        """Send a lifecycle notification: {"event": "reauthorizationRequired" | "subscriptionRemoved" | "missed"}."""
        from sandbox.vendors.microsoft365.subscriptions import lifecycle

        item, problem = lifecycle(subscription_id, str((request.get_json(silent=True) or {}).get("event") or ""))
        if item is None:
            return jsonify({"error": problem}), 404 if problem == "no such subscription" else 400
        return jsonify(item), 202

    @bp.post("/_control/subscriptions/<subscription_id>/expire")
    def control_expire(subscription_id: str):
        """Make a subscription lapse now (as if Bastion failed to renew it): Graph then forgets it."""
        subscription = col("subscriptions").get(subscription_id)
        if subscription is None:
            return jsonify({"error": "no such subscription"}), 404
        subscription["expirationDateTime"] = "2000-01-01T00:00:00Z"
        return jsonify({"id": subscription_id, "expirationDateTime": subscription["expirationDateTime"]})

    @bp.get("/_control/deliveries")
    def control_deliveries():
        """Notifications the stand-in sent (change and lifecycle), with the receiver's HTTP status."""
        from sandbox.vendors.microsoft365.subscriptions import deliveries

        return jsonify(deliveries(request.args.get("subscription_id")))

    @bp.post("/_control/channels/<path:channel_id>/messages")
    def control_post_as(channel_id: str):
        """A person posts in a channel (inbound traffic for notifications and delta): {"from": email, "text": ...}."""
        from sandbox.vendors.microsoft365.teams import inbound_message

        body = request.get_json(silent=True) or {}
        message, problem = inbound_message(channel_id, str(body.get("from") or ""), str(body.get("text") or ""))
        if message is None:
            return jsonify({"error": problem}), 404
        return jsonify(message), 201

    return bp
