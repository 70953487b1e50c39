"""Webhooks from a spec: HMAC signatures over a templated signed string, a timestamp window, handshakes, event mapping."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import orjson

from integrations.connectors.base import WebhookEvent, WebhookRequest
from integrations.connectors.declarative.filters import to_datetime
from integrations.connectors.declarative.runtime import CaseInsensitive, DeclarativeConnector, select, text
from integrations.connectors.declarative.template import holds, render
from integrations.connectors.kit.signatures import REPLAY_WINDOW_SECONDS, check_window, epoch_seconds, hmac_digest, require_header, verify_hmac
from integrations.errors import WebhookRejected


def form_params(body: bytes) -> dict[str, Any]:
    """A form body as a mapping; a repeated name holds a list of its values."""
    params: dict[str, Any] = {}
    for name, value in parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True):
        if name in params:
            params[name] = [*params[name], value] if isinstance(params[name], list) else [params[name], value]
        else:
            params[name] = value
    return params


def url_variants(url: str) -> list[str]:
    """The URL as called, and with the default port added or dropped (proxies differ; vendors' SDKs try both)."""
    parts = urlsplit(url)
    variants = [url]
    default = {"https": 443, "http": 80}.get(parts.scheme)
    if parts.port is None and default:
        variants.append(urlunsplit(parts._replace(netloc=f"{parts.hostname}:{default}")))
    elif parts.port == default:
        variants.append(urlunsplit(parts._replace(netloc=parts.hostname or "")))
    return variants


def delivery_scope(spec: Mapping[str, Any], request: WebhookRequest, config: Mapping[str, Any] | None) -> dict[str, Any]:
    """What webhook templates see: the request, its headers, the body parsed as the spec says, the raw body as text."""
    webhooks = spec.get("webhooks") or {}
    raw_text = request.body.decode("utf-8", errors="surrogateescape")  # round-trips any byte: the HMAC is over the raw body
    form = form_params(request.body) if webhooks.get("body") == "form" else {}
    body: Any = form
    if webhooks.get("body", "json") == "json":
        try:
            body = orjson.loads(request.body) if request.body else None
        except orjson.JSONDecodeError:
            body = None
    elif webhooks.get("body") == "raw":
        body = raw_text
    headers = CaseInsensitive(request.headers)
    return {
        "request": {"method": request.method, "url": request.url, "headers": headers},
        "url": request.url,
        "headers": headers,
        "body": body,
        "form": form,
        "raw_body": raw_text,
        "received_at": request.received_at,
        "config": dict(config or {}),
        "const": spec.get("constants") or {},
    }


def webhook_signature(cls: type[DeclarativeConnector], secret: str, request: WebhookRequest, *, config: Mapping[str, Any] | None = None) -> str:
    """The signature header value the spec expects for `request` (tests, the sandbox and the builder sign with it)."""
    signature = cls.spec["webhooks"]["signature"]
    scope = delivery_scope(cls.spec, request, config)
    timestamp = signature.get("timestamp") or {}
    if timestamp:
        raw = request.header(timestamp["header"]) if timestamp.get("header") else render(timestamp.get("value"), scope)
        scope["timestamp"] = text(raw)
    scope["url"] = text(render(signature["url"], scope)) if signature.get("url") else request.url
    signed_string = cls.hook("signed_string")
    message = signed_string(cls, request, scope) if signed_string else text(render(signature["signed"], scope)).encode("utf-8", errors="surrogateescape")
    digest = hmac_digest(secret, message, algorithm=signature.get("algorithm", "sha256"), encoding=signature.get("encoding", "hex"))
    return signature.get("prefix", "") + digest


def signature_candidates(signature: Mapping[str, Any], request: WebhookRequest, vendor: str) -> list[str]:
    """The signatures a delivery carries: one header (split on `separator`), or every present header of a numbered series.

    `numbered: N` reads `header` with {n} = 1..N (DocuSign's X-DocuSign-Signature-1..N, one per active key during a
    rotation); any one of them may match. None present is a 400 naming the first.
    """
    if signature.get("numbered"):
        names = [signature["header"].replace("{n}", str(n)) for n in range(1, int(signature["numbered"]) + 1)]
        found = [value for value in (request.header(name) for name in names) if value]
        return found or [require_header(None, names[0], vendor)]
    received = require_header(request.header(signature["header"]), signature["header"], vendor)
    return [c for c in received.split(signature["separator"])] if signature.get("separator") else [received]


class WebhooksMixin(DeclarativeConnector):
    """verify_webhook, parse_webhook and webhook_account_id from `webhooks`."""

    @classmethod
    def verify_webhook(cls, request: WebhookRequest, *, secret: str, config: Mapping[str, Any] | None = None) -> None:
        hook = cls.hook("verify_webhook")
        if hook is not None:
            return hook(cls, request, secret=secret, config=config)
        webhooks = cls.spec.get("webhooks")
        if not webhooks:
            return super().verify_webhook(request, secret=secret, config=config)
        signature = webhooks["signature"]
        vendor = cls.manifest.name
        scope = delivery_scope(cls.spec, request, config)
        for handshake in webhooks.get("handshake") or []:
            if handshake.get("unsigned") and holds(handshake["when"], scope):
                return  # an unsigned handshake carries nothing but the challenge (parse_webhook answers it, stores nothing)
        candidates = signature_candidates(signature, request, vendor)
        stamp: float | None = None
        timestamp = signature.get("timestamp")
        if timestamp:
            raw = request.header(timestamp["header"]) if timestamp.get("header") else render(timestamp.get("value"), scope)
            if raw in (None, ""):
                raise WebhookRejected(400, "missing_timestamp", f"{vendor}: the delivery's timestamp is missing.")
            stamp = epoch_seconds(raw, unit=timestamp.get("unit", "s"))
            scope["timestamp"] = text(raw)
        signed_string = cls.hook("signed_string")
        url = text(render(signature["url"], scope)) if signature.get("url") else request.url
        rejected: WebhookRejected | None = None
        urls = [url, *(text(render(extra, scope)) for extra in signature.get("alternate_urls") or [])]
        candidates_urls = [v for u in dict.fromkeys(u for u in urls if u) for v in (url_variants(u) if signature.get("try_default_port") else [u])]
        for variant in candidates_urls:
            scope["url"] = variant
            message = (
                signed_string(cls, request, scope) if signed_string else text(render(signature["signed"], scope)).encode("utf-8", errors="surrogateescape")
            )
            try:
                verify_hmac(
                    candidates,
                    secret=secret,
                    message=message,
                    algorithm=signature.get("algorithm", "sha256"),
                    encoding=signature.get("encoding", "hex"),
                    prefix=signature.get("prefix", ""),
                    vendor=vendor,
                )
                rejected = None
                break
            except WebhookRejected as exc:
                rejected = exc
        if rejected is not None:
            raise rejected
        if stamp is not None:
            try:
                # Against when the delivery arrived (a queued delivery verified later is not a replay).
                now = request.received_at.timestamp() if request.received_at else None
                check_window(stamp, now=now, window=int(timestamp.get("window", REPLAY_WINDOW_SECONDS)), vendor=vendor)
            except WebhookRejected as exc:
                exc.code = str(timestamp.get("stale_code") or exc.code)
                raise

    @classmethod
    def parse_webhook(cls, request: WebhookRequest) -> list[WebhookEvent]:
        hook = cls.hook("parse_webhook")
        if hook is not None:
            return hook(cls, request)
        webhooks = cls.spec.get("webhooks")
        if not webhooks:
            return super().parse_webhook(request)
        scope = delivery_scope(cls.spec, request, None)
        fallback_id = hashlib.sha256(request.body).hexdigest()
        for handshake in webhooks.get("handshake") or []:
            if holds(handshake["when"], scope):
                event = WebhookEvent(fallback_id, "handshake", action="ignore", occurred_at=request.received_at)
                if "json" in handshake:
                    event.challenge_response = render(handshake["json"], scope)
                else:
                    event.challenge_text = text(render(handshake.get("text", ""), scope))
                # Headers the answer must carry (Asana echoes X-Hook-Secret); the intake sends them when it knows the field.
                event.challenge_headers = {k: text(v) for k, v in render(handshake.get("headers") or {}, scope, drop_none=True).items()}
                return [event]
        for reject in webhooks.get("reject") or []:
            if holds(reject["if"], scope):
                raise WebhookRejected(int(reject.get("status", 400)), str(reject.get("code", "invalid_payload")), text(render(reject["message"], scope)))
        for rule in webhooks.get("events") or []:
            if not holds(rule.get("when", True), scope):
                continue
            items = select(rule["many"], scope["body"]) if rule.get("many") else [None]
            if rule.get("item_when"):
                items = [item for item in items if holds(rule["item_when"], {**scope, "item": item, "event": item})]
            return [cls._event(rule, {**scope, "item": item, "event": item}, fallback_id, index) for index, item in enumerate(items)]
        return [WebhookEvent(fallback_id, "unknown", action="unsupported", occurred_at=request.received_at)]

    @staticmethod
    def _event(rule: Mapping[str, Any], scope: Mapping[str, Any], fallback_id: str, index: int) -> WebhookEvent:
        occurred = render(rule["occurred_at"], scope) if rule.get("occurred_at") else None
        delivery = text(render(rule["delivery_id"], scope)) if rule.get("delivery_id") else f"{fallback_id}:{index}" if index else fallback_id
        record = render(rule["record"], scope) if "record" in rule else None
        return WebhookEvent(
            delivery_id=delivery,
            event_type=text(render(rule["type"], scope)),
            entity=text(render(rule.get("entity", ""), scope)),
            external_id=text(render(rule.get("external_id", ""), scope)),
            action=text(render(rule.get("action", "upsert"), scope)) or "upsert",
            record=record if isinstance(record, dict) else None,
            occurred_at=to_datetime(occurred),
        )

    @classmethod
    def webhook_account_id(cls, request: WebhookRequest) -> str:
        hook = cls.hook("webhook_account_id")
        if hook is not None:
            return hook(cls, request)
        template = (cls.spec.get("webhooks") or {}).get("account_id")
        return text(render(template, delivery_scope(cls.spec, request, None))) if template else ""
