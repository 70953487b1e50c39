"""Build one row of any tenant-owned model for a given organization, and enumerate the project's routes."""

from __future__ import annotations

import datetime
import decimal
import itertools
import re
import uuid
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.contrib.auth import get_user_model
from django.db import models
from django.urls import URLPattern, URLResolver, get_resolver

from accounts.models import Organization

PROJECT_APPS = ("accounts", "integrations", "people", "sync", "scenarios", "forms_engine", "playbooks", "data_rights")
_counter = itertools.count(1)


def organization_path(model: type[models.Model], seen: frozenset = frozenset()) -> bool:
    """True when rows of `model` belong to an organization (directly or through required FKs)."""
    if model is Organization:
        return True
    if model in seen:
        return False
    for field in model._meta.concrete_fields:
        if isinstance(field, models.ForeignKey) and not field.null:
            if field.related_model is Organization or organization_path(field.related_model, seen | {model}):
                return True
    return False


def tenant_models() -> list[type[models.Model]]:
    return [
        m
        for m in apps.get_models()
        if m._meta.app_label in PROJECT_APPS and m is not Organization and not m._meta.abstract and organization_path(m) and m._meta.app_label != "accounts"
    ]


def _value_for(field: models.Field) -> Any:
    n = next(_counter)
    if field.choices:
        return field.choices[0][0]
    if isinstance(field, models.UUIDField):
        return uuid.uuid4()
    if isinstance(field, (models.EmailField,)):
        return f"t{n}@tenant.example"
    if isinstance(field, models.URLField):
        return f"https://example.com/{n}"
    if isinstance(field, models.SlugField):
        return f"slug-{n}"
    if isinstance(field, (models.CharField, models.TextField)):
        max_length = field.max_length or 50
        return f"x{n}"[:max_length]
    if isinstance(field, models.BooleanField):
        return False
    if isinstance(field, (models.IntegerField, models.FloatField)):
        return 1
    if isinstance(field, models.DecimalField):
        return decimal.Decimal("1")
    if isinstance(field, models.DateTimeField):
        return datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    if isinstance(field, models.DateField):
        return datetime.date(2026, 1, 1)
    if isinstance(field, models.JSONField):
        return {}
    if isinstance(field, models.GenericIPAddressField):
        return "127.0.0.1"
    return None


def build(model: type[models.Model], organization: Organization, cache: dict | None = None) -> models.Model:
    """Create a minimal valid row of `model` whose organization (everywhere in its FK chain) is `organization`."""
    cache = {} if cache is None else cache
    if model in cache:
        return cache[model]
    values: dict[str, Any] = {}
    for field in model._meta.concrete_fields:
        if field.primary_key or getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            continue
        if isinstance(field, models.ForeignKey):
            if field.related_model is Organization:
                values[field.name] = organization
            elif field.related_model is get_user_model():
                if not field.null:
                    values[field.name] = get_user_model().objects.create_user(username=f"tenant-user-{next(_counter)}")
            elif not field.null:
                values[field.name] = build(field.related_model, organization, cache)
            continue
        if field.has_default() or field.null or (field.blank and not isinstance(field, (models.CharField, models.TextField))):
            continue
        values[field.name] = _value_for(field)
    instance = model._default_manager.create(**values)
    cache[model] = instance
    return instance


@dataclass
class Route:
    pattern: str
    name: str
    callback: Any
    params: list[str]


def routes() -> list[Route]:
    found: list[Route] = []

    def walk(patterns, prefix: str = "") -> None:
        for entry in patterns:
            if isinstance(entry, URLResolver):
                walk(entry.url_patterns, prefix + str(entry.pattern))
            elif isinstance(entry, URLPattern):
                pattern = (prefix + str(entry.pattern)).replace("^", "").replace("$", "")
                pattern = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"<\1>", pattern)
                found.append(Route(pattern, entry.name or "", entry.callback, list(entry.pattern.converters.keys()) or _regex_params(entry)))

    walk(get_resolver().url_patterns)
    return found


def _regex_params(entry: URLPattern) -> list[str]:
    regex = getattr(entry.pattern, "regex", None)
    return list(regex.groupindex.keys()) if regex is not None else []
