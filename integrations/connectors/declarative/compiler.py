"""compile_spec and load_spec_file: a validated spec becomes a BaseConnector subclass like any Python connector."""

from __future__ import annotations

import copy
import importlib
import importlib.util
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from integrations.connectors.base import BaseConnector, Capability
from integrations.connectors.declarative.acting import (
    ActingMixin,
    ChoicesMixin,
    DocumentsMixin,
    DocumentValuesMixin,
    FetchMixin,
    RegisterMixin,
    UndoMixin,
)
from integrations.connectors.declarative.manifest import build_manifest
from integrations.connectors.declarative.problems import SpecInvalid, SpecProblem, spec_path
from integrations.connectors.declarative.validate import validate_spec
from integrations.connectors.declarative.webhooks import WebhooksMixin

MAX_SPEC_BYTES = 512 * 1024
CONNECTORS_DIR = Path(__file__).resolve().parent.parent

# Hook-backed capabilities → the mixin that overrides the contract's hook (BaseConnector checks the pairing).
CAPABILITY_MIXINS: tuple[tuple[Capability, type], ...] = (
    (Capability.UNDO, UndoMixin),
    (Capability.FETCH_STATUS, FetchMixin),
    (Capability.CONFIG_CHOICES, ChoicesMixin),
    (Capability.WEBHOOK_REGISTRATION, RegisterMixin),
    (Capability.DOCUMENTS, DocumentsMixin),
    (Capability.DOCUMENT_VALUES, DocumentValuesMixin),
)


class DeclarativeBase(WebhooksMixin, ActingMixin):
    """Reading, acting and webhooks together; compiled classes add the capability mixins they declare."""


def _class_name(key: str) -> str:
    return "".join(part.capitalize() for part in key.split("_")) + "Connector"


def compile_spec(doc: Mapping[str, Any], *, hooks: ModuleType | None = None, allow_hooks: bool = True, module: str = "") -> type[BaseConnector]:
    """The connector class the spec describes; SpecInvalid(problems) when it is broken (each problem with its path)."""
    problems = validate_spec(doc, allow_hooks=allow_hooks)
    named = (doc.get("hooks") or {}) if isinstance(doc, Mapping) and isinstance(doc.get("hooks"), Mapping) else {}
    if allow_hooks:
        for point, function in named.items():
            if hooks is None:
                problems.append(SpecProblem(spec_path(("hooks", point)), "the spec names hooks but no hooks module was given (hooks.py next to spec.yaml)"))
            elif not callable(getattr(hooks, str(function), None)):
                problems.append(SpecProblem(spec_path(("hooks", point)), f"hooks.py has no function '{function}'"))
    if problems:
        raise SpecInvalid(problems)
    spec = copy.deepcopy(dict(doc))
    try:
        manifest = build_manifest(spec)
    except ValueError as exc:  # a role without its actions and other manifest rules the contract checks itself
        raise SpecInvalid([SpecProblem("", str(exc))]) from exc
    bases = tuple(mixin for capability, mixin in CAPABILITY_MIXINS if capability in manifest.capabilities) + (DeclarativeBase,)
    name = _class_name(manifest.key)
    namespace = {
        "__module__": module or __name__,
        "__qualname__": name,
        "__doc__": f"{manifest.name}, compiled from its declarative spec.",
        "manifest": manifest,
        "spec": spec,
        "hooks": hooks if allow_hooks else None,
    }
    return type(name, bases, namespace)


SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_spec_file(path: str | Path) -> dict[str, Any]:
    """The spec document of a YAML (or JSON) file, read safely (no tags, size-capped)."""
    raw = Path(path).read_bytes()
    if len(raw) > MAX_SPEC_BYTES:
        raise SpecInvalid([SpecProblem("", f"the spec file is larger than {MAX_SPEC_BYTES // 1024} KB")])
    try:
        doc = yaml.load(raw, Loader=SAFE_LOADER)  # noqa: S506 - the safe loader (libyaml's when built in: 10× faster)
    except yaml.YAMLError as exc:
        raise SpecInvalid([SpecProblem("", f"not valid YAML: {exc}")]) from exc
    if not isinstance(doc, dict):
        raise SpecInvalid([SpecProblem("", "a spec is a mapping at the top level")])
    return doc


def _hooks_module(path: Path) -> tuple[ModuleType | None, str]:
    """The sibling hooks.py (imported by its package name when it lives among the built-in connectors)."""
    hooks_file = path.with_name("hooks.py")
    try:
        relative = path.parent.relative_to(CONNECTORS_DIR)
    except ValueError:
        relative = None
    package = f"integrations.connectors.{'.'.join(relative.parts)}" if relative is not None and relative.parts else ""
    if not hooks_file.exists():
        return None, package
    if package and (path.parent / "__init__.py").exists():
        return importlib.import_module(f"{package}.hooks"), package
    loader_spec = importlib.util.spec_from_file_location(f"bastion_spec_hooks_{abs(hash(str(hooks_file)))}", hooks_file)
    module = importlib.util.module_from_spec(loader_spec)  # type: ignore[arg-type]
    loader_spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module, package


@lru_cache(maxsize=128)
def _load(path: str, mtime: float) -> type[BaseConnector]:
    file = Path(path)
    doc = read_spec_file(file)
    hooks, package = _hooks_module(file) if doc.get("hooks") else (None, "")
    if not package:
        try:
            package = "integrations.connectors." + ".".join(file.parent.relative_to(CONNECTORS_DIR).parts)
        except ValueError:
            package = ""
    return compile_spec(doc, hooks=hooks, module=package)


def load_spec_file(path: str | Path) -> type[BaseConnector]:
    """The connector class of a spec file; loading the same unchanged file again returns the same class."""
    file = Path(path).resolve()
    return _load(str(file), file.stat().st_mtime)
