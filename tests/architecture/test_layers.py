"""The architecture holds: vendor knowledge stays in the connectors, no probing of connectors, small modules, imports go down."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path

from django.conf import settings

from integrations import registry

ROOT = Path(__file__).resolve().parents[2]
CONNECTORS = ROOT / "integrations" / "connectors"
TOP = "bastion_site"  # the project package: wires every app together, so it may import any of them
MAX_LINES = 600
NOT_SHIPPED_CODE = ("tests", "sandbox", "migrations", ".venv", "node_modules")

# Literals equal to a vendor key that are also ordinary Bastion words, with why they are not vendor knowledge.
COMMON_WORDS = {
    "email": "the person's e-mail field and a form field type as much as the SMTP connector's key",
}
# Modules outside the connectors that may name vendors, each with its reason: None allows every vendor name in the module,
# a set only those literals.
VENDOR_NAMES_ALLOWED: dict[str, tuple[str, frozenset[str] | None]] = {
    "scenarios/definitions.py": ("the shipped scenario templates: data naming the connectors their sources read", None),
    "playbooks/management/commands/bastion_demo.py": ("seeds the demo: connects each vendor's sandbox stand-in by key", None),
    "integrations/apis.py": ("OpenAPI request examples for connecting an integration (documentation)", frozenset({"jira", "slack"})),
    "integrations/ssrf.py": ("ldap is a transport (URL scheme) the SSRF guard knows, not the connector", frozenset({"ldap"})),
}
# Modules over MAX_LINES, each with why it cannot be split (none today).
LONG_MODULES_ALLOWED: dict[str, str] = {}


@cache
def layers() -> list[str]:
    """Bastion's apps bottom layer first, as settings.INSTALLED_APPS lists them, then the project package."""
    local = [app for app in settings.INSTALLED_APPS if "." not in app and (ROOT / app / "__init__.py").exists()]
    return [*local, TOP]


def app_modules(*, with_connectors: bool = True) -> Iterator[Path]:
    for app in layers():
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" in path.parts or (not with_connectors and CONNECTORS in path.parents):
                continue
            yield path


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


@cache
def parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


@cache
def vendor_vocabulary() -> tuple[frozenset[str], frozenset[str]]:
    """Vendor connector keys and vendor action names, from the installed manifests (sandbox stand-ins are no vendor)."""
    vendors = [c.manifest for c in registry.connector_classes().values() if not c.manifest.sandbox_only]
    keys = frozenset(m.key for m in vendors) - set(COMMON_WORDS)
    actions = frozenset(a.key for m in vendors for a in m.actions) - set(COMMON_WORDS)
    return keys, actions


def string_literals(tree: ast.Module) -> Iterator[tuple[int, str]]:
    """Every string constant except docstrings."""
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                docstrings.add(id(first.value))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            yield node.lineno, node.value


IDENTIFIER_LIKE = re.compile(r"[a-z0-9_.:/-]+")


def vendor_words(literal: str, names: frozenset[str]) -> set[str]:
    """The vendor names a literal spells: the whole literal, or a part of a dotted/slashed identifier ("slack:create_channel")."""
    if literal in names:
        return {literal}
    if IDENTIFIER_LIKE.fullmatch(literal):
        return set(re.split(r"[.:/-]", literal)) & names
    return set()


def test_vendor_vocabulary_is_read_from_the_manifests():
    keys, actions = vendor_vocabulary()
    assert {"slack", "jira", "pagerduty"} <= keys and {"create_channel", "create_issue", "trigger_incident"} <= actions


def test_no_vendor_key_or_action_name_outside_the_connectors():
    keys, actions = vendor_vocabulary()
    names = keys | actions
    found = []
    for path in app_modules(with_connectors=False):
        _reason, allowed = VENDOR_NAMES_ALLOWED.get(rel(path), ("", frozenset()))
        if allowed is None:
            continue
        for line, literal in string_literals(parse(path)):
            if (words := vendor_words(literal, names)) and literal not in allowed:
                found.append(f"{rel(path)}:{line}: {literal!r} names {', '.join(sorted(words))}")
    assert not found, f"{len(found)} vendor names outside integrations/connectors/:\n" + "\n".join(found)


def probes(path: Path) -> Iterator[tuple[int, str]]:
    """getattr()/hasattr() on anything named like a connector (an instance, its class, a lookup returning one), and inspect."""
    source = path.read_text(encoding="utf-8")
    for node in ast.walk(parse(path)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("getattr", "hasattr") and node.args:
            target = ast.get_source_segment(source, node.args[0]) or ""
            if "connector" in target.lower():
                yield node.lineno, ast.get_source_segment(source, node) or ""
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module or ""]
        if any(name == "inspect" or name.startswith("inspect.") for name in names):
            yield node.lineno, "import inspect"


def test_no_probing_of_connectors_and_no_inspect():
    found = [f"{rel(path)}:{line}: {code}" for path in app_modules(with_connectors=False) for line, code in probes(path)]
    assert not found, "Ask the contract (Capability, typed hooks on BaseConnector), do not probe the class:\n" + "\n".join(found)


def test_no_module_over_the_line_budget():
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT).parts
        if any(part in NOT_SHIPPED_CODE for part in parts) or rel(path) in LONG_MODULES_ALLOWED:
            continue
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_LINES:
            found.append(f"{rel(path)}: {lines} lines")
    assert not found, f"Modules over {MAX_LINES} lines (split along their seams):\n" + "\n".join(found)


def imported_modules(tree: ast.Module, package: str) -> Iterator[tuple[int, str]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the importing package
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                yield node.lineno, ".".join([*base, node.module] if node.module else base)
            else:
                yield node.lineno, node.module or ""


def test_imports_go_down_the_app_list():
    order = {app: index for index, app in enumerate(layers())}
    found = []
    for path in app_modules():
        own = path.relative_to(ROOT).parts[0]
        package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
        for line, module in imported_modules(parse(path), package):
            target = module.split(".")[0]
            if target in order and order[target] > order[own]:
                found.append(f"{rel(path)}:{line}: {own} imports {module} (above it)")
    assert not found, "Imports go down the app list " + " → ".join(reversed(layers())) + ":\n" + "\n".join(found)


def test_connectors_never_touch_the_orm():
    apps = set(layers())
    found = []
    for path in sorted(CONNECTORS.rglob("*.py")):
        for line, module in imported_modules(parse(path), "integrations.connectors"):
            parts = module.split(".")
            if module.startswith("django.db") or (parts[0] in apps and "models" in parts):
                found.append(f"{rel(path)}:{line}: imports {module}")
    assert not found, "Connectors know one vendor's API and no database:\n" + "\n".join(found)
