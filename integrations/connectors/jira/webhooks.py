"""Jira webhooks: registration (admin webhook, or a dynamic one under OAuth), verification, parsing, issue status for the war room."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from integrations.connectors.base import TrackedObject, WebhookEvent, WebhookRequest
from integrations.connectors.jira.client import JiraClient
from integrations.connectors.jira.dynamic_webhooks import dynamic_webhook_register, dynamic_webhooks_refresh, jwt_verify
from integrations.connectors.jira.manifest import USER_EVENTS, WEBHOOK_EVENTS, WEBHOOKS
from integrations.connectors.jira.tracking import issue_state
from integrations.connectors.kit.signatures import check_window, verify_hmac
from integrations.errors import ApiBadRequest, WebhookRejected


def browse_url(key: str, self_link: str, config: Mapping[str, Any]) -> str:
    """An issue's page: on the configured site, else on the site its REST `self` link names."""
    site = config.get("site_url") or (self_link.split("/rest/api/")[0] if "/rest/api/" in self_link else "")
    return f"{site.rstrip('/')}/browse/{key}" if site and key else ""


class JiraWebhooks(JiraClient):
    """register_webhook (instance: it calls Jira) and the delivery classmethods."""

    def register_webhook(self, *, url: str, secret: str) -> dict[str, Any]:
        """Register (or re-register with a new secret) the signed admin webhook that sends issue changes to `url`.

        OAuth 2.0 connections cannot reach the admin endpoint: they register a dynamic webhook (/rest/api/3/webhook), signed
        with a JWT under the app's client secret and expiring after 30 days unless refreshed (`refresh_webhooks`).
        """
        if self.uses_oauth:
            return dynamic_webhook_register(self.client, url=url, jql=self._webhook_jql())
        hooks = self.client.get(WEBHOOKS).json()
        for hook in hooks:
            if hook.get("url") == url:
                # Jira keeps the secret write-only: replace the hook so the new secret takes effect.
                self.client.delete(f"{WEBHOOKS}/{hook['id']}")
        body = {"name": "Bastion", "url": url, "events": list(WEBHOOK_EVENTS), "secret": secret, "excludeBody": False, "enabled": True}
        return self.client.post(WEBHOOKS, json=body).json()

    def _webhook_jql(self) -> str:
        """A dynamic webhook needs a jqlFilter (of the few clauses it supports): the configured projects, else every project now visible."""
        keys = [k.strip().upper() for k in str(self.config.get("project_keys") or "").split(",") if k.strip()]
        if not keys:
            body = self.client.get(f"{self.api}/project/search", params={"maxResults": 100, "orderBy": "key"}).json()
            keys = [str(p["key"]) for p in body.get("values") or [] if p.get("key")]
        if not keys:
            raise ApiBadRequest("Jira shows this account no project, so there is nothing a webhook could report.")
        return f"project in ({', '.join(keys)})"

    def refresh_webhooks(self, webhook_ids: list[int]) -> datetime:
        """Extend dynamic webhooks registered under OAuth before their 30 days run out; returns the new expiry."""
        return dynamic_webhooks_refresh(self.client, webhook_ids)

    @classmethod
    def verify_webhook(cls, request: WebhookRequest, *, secret: str, config: Mapping[str, Any] | None = None) -> None:
        """X-Hub-Signature (sha256=…) over the raw body in constant time, then the payload timestamp within 5 minutes.

        A dynamic webhook (OAuth 2.0 connection) has no X-Hub-Signature: its Authorization JWT is checked with `secret`,
        which the intake sets to the app's client secret for such connections.
        """
        signature = request.header("X-Hub-Signature")
        if not signature and request.header("Authorization"):
            jwt_verify(request.header("Authorization") or "", secret=secret, now=request.received_at)
            cls._check_timestamp(request)
            return
        if not signature:
            raise WebhookRejected(400, "missing_signature", "X-Hub-Signature is required; register the Jira webhook with a secret.")
        algorithm, _, digest = signature.strip().partition("=")
        if algorithm != "sha256" or not digest:
            raise WebhookRejected(400, "bad_signature_format", "X-Hub-Signature must look like sha256=<hex>.")
        verify_hmac(digest.lower(), secret=secret, message=request.body, vendor="Jira")
        cls._check_timestamp(request)

    @classmethod
    def _check_timestamp(cls, request: WebhookRequest) -> None:
        """The payload's `timestamp` (epoch milliseconds) within the replay window."""
        try:
            timestamp = int(json.loads(request.body)["timestamp"])
        except (ValueError, KeyError, TypeError) as exc:
            raise WebhookRejected(400, "missing_timestamp", "The Jira payload has no numeric timestamp.") from exc
        check_window(timestamp / 1000, now=request.received_at.timestamp(), vendor="Jira")

    @classmethod
    def _user_events(cls, delivery_id: str, kind: str, user: Any, occurred: datetime | None) -> list[WebhookEvent]:
        """Directory users: created/updated upsert the account (the same shape `read('users')` returns), deleted retires it."""
        user_id = cls.webhook_user_id(user)
        if not user_id:
            raise WebhookRejected(400, "invalid_payload", f"A Jira {kind} event names its user (user.accountId).")
        if kind == "user_deleted":
            return [WebhookEvent(delivery_id, kind, "users", user_id, "delete", None, occurred)]
        return [WebhookEvent(delivery_id, kind, "users", user_id, "upsert", dict(user), occurred)]

    @classmethod
    def webhook_user_id(cls, user: Any) -> str:
        """The id `external_id('users', …)` gives the account a webhook names."""
        return str(user.get("accountId") or "") if isinstance(user, Mapping) else ""

    @classmethod
    def parse_webhook(cls, request: WebhookRequest) -> list[WebhookEvent]:
        try:
            body = json.loads(request.body)
        except ValueError as exc:
            raise WebhookRejected(400, "invalid_json", "The Jira webhook body is not JSON.") from exc
        if not isinstance(body, dict) or not isinstance(body.get("webhookEvent"), str):
            raise WebhookRejected(400, "invalid_payload", "The Jira webhook has no webhookEvent.")
        delivery_id = request.header("X-Atlassian-Webhook-Identifier") or hashlib.sha256(request.body).hexdigest()
        kind = body["webhookEvent"]
        issue = body.get("issue")
        occurred = datetime.fromtimestamp(int(body["timestamp"]) / 1000, tz=UTC) if str(body.get("timestamp", "")).isdigit() else None
        if kind in USER_EVENTS:
            return cls._user_events(delivery_id, kind, body.get("user"), occurred)
        if not kind.startswith("jira:issue_"):
            # Kept in the inbox with its type, counted as unsupported: nothing in Bastion reads it yet.
            return [WebhookEvent(delivery_id, kind, action="unsupported", occurred_at=occurred)]
        if not isinstance(issue, dict) or not issue.get("id"):
            raise WebhookRejected(400, "invalid_payload", "A Jira issue event needs issue.id.")
        issue_id = str(issue["id"])
        if kind == "jira:issue_deleted":
            return [WebhookEvent(delivery_id, kind, "issues", issue_id, "delete", None, occurred)]
        events = [WebhookEvent(delivery_id, kind, "issues", issue_id, "upsert", issue, occurred)]
        items = (body.get("changelog") or {}).get("items") or []
        status = (issue.get("fields") or {}).get("status") or {}
        if status and (kind == "jira:issue_created" or any(item.get("field") == "status" for item in items)):
            record = {
                "status": status.get("name", ""),
                "status_category": (status.get("statusCategory") or {}).get("key", ""),
                "key": issue.get("key", ""),
            }
            events.append(WebhookEvent(f"{delivery_id}:status", kind, "issues", issue_id, "status", record, occurred))
        return events

    @classmethod
    def tracked_state(cls, entity: str, record: Mapping[str, Any], *, config: Mapping[str, Any]) -> TrackedObject | None:
        """An issue's status from a webhook: a whole issue (created/updated) or the status event parse_webhook adds."""
        if entity != "issues":
            return None
        fields = record.get("fields")
        if isinstance(fields, Mapping):
            status = fields.get("status") or {}
            if not status.get("name"):
                return None
            key = str(record.get("key") or "")
            return issue_state(
                str(status["name"]),
                str((status.get("statusCategory") or {}).get("key") or ""),
                owner=((fields.get("assignee") or {}).get("emailAddress") or "").lower(),
                key=key,
                url=browse_url(key, str(record.get("self") or ""), config),
            )
        if record.get("status"):
            return issue_state(str(record["status"]), str(record.get("status_category") or ""), key=str(record.get("key") or ""))
        return None
