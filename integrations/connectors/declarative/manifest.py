"""The ConnectorManifest a spec declares: the same dataclasses a Python connector writes by hand."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from integrations.connectors.base import (
    ActionSpec,
    AuthMethod,
    Capability,
    ConnectorManifest,
    CredentialField,
    EntitySpec,
    FieldShape,
    OAuthSpec,
    RateLimitSpec,
    WebhookSpec,
)
from integrations.connectors.kit.text import single_line, slug

AUTH_METHODS = {
    "none": (AuthMethod.NONE,),
    "header": (AuthMethod.API_KEY,),
    "query": (AuthMethod.API_KEY,),
    "bearer": (AuthMethod.API_KEY,),
    "client_credentials": (AuthMethod.API_KEY,),
    "basic": (AuthMethod.BASIC,),
    "oauth2": (AuthMethod.OAUTH2,),
}
SHAPE_KEYS = ("max_chars", "single_line", "format", "optional", "transform")


def _transform(name: str | None, limit: int | None) -> Any:
    if name == "slug":
        return lambda value: slug(str(value), limit=limit or 80)
    if name == "single_line":
        return lambda value: single_line(str(value), limit)
    return None


def _fields(items: list[Mapping[str, Any]] | None, *, secret: bool) -> tuple[CredentialField, ...]:
    return tuple(
        CredentialField(f["name"], f["label"], is_secret=f.get("secret", secret), is_required=f.get("required", True), help_text=f.get("help", ""))
        for f in items or []
    )


def _action(key: str, spec: Mapping[str, Any]) -> ActionSpec:
    inputs = spec.get("input") or {}
    schema = dict(spec.get("input_schema") or {k: v["schema"] for k, v in inputs.items() if "schema" in v})
    fields = {
        name: FieldShape(
            max_chars=rule.get("max_chars"),
            single_line=rule.get("single_line", False),
            format=rule.get("format", "plain"),
            transform=_transform(rule.get("transform"), rule.get("max_chars")),
            optional=rule.get("optional", False),
        )
        for name, rule in inputs.items()
        if any(k in rule for k in SHAPE_KEYS)
    }
    return ActionSpec(
        key,
        spec["name"],
        spec.get("description", ""),
        schema,
        idempotency=(spec.get("idempotency") or {}).get("kind", "none"),
        fields=fields,
        tracks=spec.get("tracks"),
        tracks_label=spec.get("tracks_label", ""),
        verb=spec.get("verb", "done"),
        undo=(spec.get("undo") or {}).get("description", ""),
        kept_on_undo=spec.get("kept_on_undo", ""),
        permissions=tuple(spec.get("permissions") or ()),
    )


def capabilities(doc: Mapping[str, Any]) -> tuple[Capability, ...]:
    """The declared capabilities plus those the sections imply, in the contract's order."""
    entities = doc.get("entities") or {}
    actions = doc.get("actions") or {}
    hooks = {str(k).split(":")[0] for k in doc.get("hooks") or {}}
    implied = {
        Capability.READ: bool(entities),
        Capability.INCREMENTAL: any("incremental" in e for e in entities.values()),
        Capability.DELETIONS: any("deletions" in e for e in entities.values()),
        Capability.ACTIONS: bool(actions),
        Capability.BULK_ACTIONS: any("bulk" in a for a in actions.values()) or "perform_bulk" in hooks,
        Capability.UNDO: any("undo" in a for a in actions.values()) or "undo" in hooks,
        Capability.FETCH_STATUS: bool(doc.get("fetch_status")) or "fetch_objects" in hooks,
        Capability.WEBHOOKS: bool(doc.get("webhooks")),
        Capability.STATUS_WEBHOOKS: bool(doc.get("webhooks")) and (any("tracked" in e for e in entities.values()) or "tracked_state" in hooks),
        Capability.WEBHOOK_REGISTRATION: "register_webhook" in hooks or bool((doc.get("webhooks") or {}).get("register")),
        Capability.CONFIG_CHOICES: bool(doc.get("options")) or "config_choices" in hooks,
        Capability.DOCUMENTS: "browse_documents" in hooks,
        Capability.DOCUMENT_VALUES: "read_document_values" in hooks,
    }
    declared = {Capability(c) for c in doc.get("capabilities") or ()}
    return tuple(c for c in Capability if c in declared or implied.get(c, False))


def build_manifest(doc: Mapping[str, Any]) -> ConnectorManifest:
    auth = doc.get("auth") or {"kind": "none"}
    methods = AUTH_METHODS[auth["kind"]]
    if auth["kind"] == "oauth2" and auth.get("also_api_key"):
        methods = (AuthMethod.OAUTH2, AuthMethod.API_KEY)
    if auth.get("auth_methods"):
        methods = tuple(AuthMethod(m) for m in auth["auth_methods"])
    oauth = None
    if auth["kind"] == "oauth2" or auth.get("oauth"):
        if auth["kind"] != "oauth2":
            auth = auth["oauth"]
        scopes = auth.get("scopes") or []
        oauth = OAuthSpec(
            authorize_url=auth["authorize_url"],
            token_url=auth["token_url"],
            scopes=tuple(s["scope"] for s in scopes),
            scope_purposes={s["scope"]: s["purpose"] for s in scopes},
            use_pkce=auth.get("pkce", True),
            rotates_refresh_token=auth.get("rotates_refresh_token", False),
            scope_separator=auth.get("scope_separator", " "),
            extra_authorize_params=dict(auth.get("extra_authorize_params") or {}),
            client_auth=auth.get("client_auth", "client_secret_post"),
        )
    webhooks = doc.get("webhooks")
    limit = doc.get("rate_limit")
    return ConnectorManifest(
        key=doc["key"],
        name=doc["name"],
        category=doc["category"],
        description=doc["description"],
        logo=doc.get("logo", ""),
        auth_methods=methods,
        credential_fields=_fields(doc.get("credentials"), secret=True),
        config_fields=_fields(doc.get("config"), secret=False),
        oauth=oauth,
        default_base_url=doc.get("base_url", ""),
        entities=tuple(
            EntitySpec(key, e["name"], e.get("description", ""), supports_incremental="incremental" in e, bastion_type=e.get("bastion_type", "other"))
            for key, e in (doc.get("entities") or {}).items()
        ),
        actions=tuple(_action(key, a) for key, a in (doc.get("actions") or {}).items()),
        webhook=WebhookSpec(
            event_types=tuple(webhooks.get("event_types") or ()),
            signature=webhooks.get("description", ""),
            key_field=webhooks.get("key_field", ""),
            oauth_jwt=webhooks.get("oauth_jwt", False),
            routes_by_account=webhooks.get("routes_by_account", False),
        )
        if webhooks
        else None,
        capabilities=capabilities(doc),
        docs_url=doc.get("docs_url", ""),
        rate_limit=RateLimitSpec(
            per_second=float(limit.get("per_second", 0.0)),
            burst=int(limit.get("burst", 1)),
            daily=limit.get("daily"),
            quota_window=limit.get("quota_window", "utc_day"),
        )
        if limit
        else None,
        sandbox_only=doc.get("sandbox_only", False),
        person_rank=doc.get("person_rank"),
        roles=tuple(doc.get("roles") or ()),
    )
