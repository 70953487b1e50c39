"""Checks on an integration's settings before they are stored: base URL, URL settings, roles, required config."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from accounts.models import Role
from common.errors import ApplicationError
from integrations.connectors.base import BaseConnector, ConnectorManifest
from integrations.errors import ApiHostError, UnsafeBaseUrl
from integrations.services.catalog import connector_class_for

logger = logging.getLogger(__name__)


def base_url_validate(base_url: str) -> str:
    """Refuse base URLs that would point Bastion's server at internal hosts (SSRF), with a clear field error."""
    from integrations.ssrf import check_url

    base_url = (base_url or "").strip()
    if not base_url:
        return ""
    try:
        check_url(base_url)
    except UnsafeBaseUrl as exc:
        raise ApplicationError(exc.message, code="unsafe_base_url", fields={"base_url": [exc.message]})
    except ApiHostError as exc:
        # The name does not resolve now (a typo, or DNS is down): nothing to refuse, since every connection vets its own
        # DNS answer; the connection test names the problem, and a resolver outage must not block saving settings.
        logger.info("integration.base_url_unresolved", extra={"error": exc.message})
    return base_url.rstrip("/")


def allowed_roles_validate(roles: Any) -> list[str]:
    if roles in (None, ""):
        return []
    if not isinstance(roles, list) or any(r not in Role.values for r in roles):
        message = f"allowed_roles must be a list of roles from {', '.join(Role.values)}."
        raise ApplicationError(message, code="invalid", fields={"allowed_roles": [message]})
    return sorted(set(roles), key=Role.values.index)


def config_targets_validate(connector_class: type[BaseConnector], config: Mapping[str, Any]) -> None:
    """Refuse URL settings that are not http(s) (or the field's own scheme) and hosts the SSRF guard refuses, with field errors.

    Every "*url" setting is a URL Bastion calls or renders as a link; hosts a connector reaches outside the HTTP client
    (SMTP, LDAP) are vetted like base URLs, now and again on every connect.
    """
    from common.url_safety import url_problem
    from integrations.ssrf import check_url, outbound_target_problem

    problems: dict[str, list[str]] = {}
    for name, value in config.items():
        if str(name).lower().endswith("url") and value not in (None, ""):
            schemes = connector_class.url_config_schemes.get(name, ("http", "https"))
            problem = url_problem(value, schemes=schemes) if isinstance(value, str) else "must be a URL"
            if problem:
                problems[str(name)] = [f"{name} {problem}."]
            elif name not in connector_class.url_config_schemes:
                try:
                    check_url(value.strip())
                except UnsafeBaseUrl as exc:
                    problems[str(name)] = [exc.message]
                except ApiHostError:
                    pass  # does not resolve now: every connection vets its own DNS answer
    for target in connector_class.outbound_targets(config):
        if target.field not in problems:
            problem = outbound_target_problem(target)
            if problem:
                problems[target.field] = [problem]
    if problems:
        first = next(iter(problems.values()))[0]
        raise ApplicationError(first, code="unsafe_config", fields=problems)


def config_validate(manifest: ConnectorManifest, config: Mapping[str, Any] | None, *, partial: bool = True) -> dict[str, Any]:
    """Config is non-secret JSON; required config fields are checked when the wizard finishes (partial=False)."""
    if config is None:
        return {}
    if not isinstance(config, Mapping):
        raise ApplicationError("config must be a JSON object.", code="invalid", fields={"config": ["Must be a JSON object."]})
    config = dict(config)
    config_targets_validate(connector_class_for(manifest.key), config)
    if not partial:
        missing = [f.name for f in manifest.config_fields if f.is_required and not str(config.get(f.name, "")).strip()]
        if missing:
            raise ApplicationError(f"Missing settings: {', '.join(missing)}.", code="invalid", fields={name: ["This setting is required."] for name in missing})
    if config.get("oauth_base_url"):
        base_url_validate(str(config["oauth_base_url"]))
    return config
