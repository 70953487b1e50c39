"""Stand-ins that talk only to the vendor sandbox are in the catalogue where the sandbox is in use, never on a production server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from integrations import registry

ROOT = Path(__file__).resolve().parents[2]
SANDBOX_ONLY = {"demo", "sandbox_actions", "sandbox_directory"}
PROBE = """
import django
django.setup()
from integrations.registry import connector_classes, manifests
keys = set(connector_classes())
print(",".join(sorted(keys & {"demo", "sandbox_actions", "sandbox_directory"})) or "-", len(keys), len(manifests()))
"""


def catalogue_in_a_fresh_process(extra_env: dict[str, str], env_file: Path) -> tuple[set[str], int]:
    """The sandbox-only keys a new process's catalogue lists, and how many connectors it lists in all."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BASTION_", "DJANGO_"))}
    # A .env of its own (development writes one on first run; production reads none that exists).
    env.update({"DJANGO_SETTINGS_MODULE": "bastion_site.settings", "BASTION_ENV_FILE": str(env_file), **extra_env})
    result = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    listed, total, listed_manifests = result.stdout.split()[-3:]
    assert total == listed_manifests
    return (set() if listed == "-" else set(listed.split(","))), int(total)


@pytest.fixture
def fresh_catalogue():
    registry.reload_catalog()
    yield
    registry.reload_catalog()


def test_exactly_the_stand_ins_are_declared_sandbox_only():
    classes = registry.connector_classes()  # tests run with the sandbox on
    assert {key for key, connector in classes.items() if connector.manifest.sandbox_only} == SANDBOX_ONLY


def test_the_switch_takes_the_stand_ins_out_of_the_catalogue(settings, fresh_catalogue):
    with_sandbox = set(registry.connector_classes())
    assert SANDBOX_ONLY <= with_sandbox

    settings.BASTION_SANDBOX_CONNECTORS = False
    registry.reload_catalog()
    without = set(registry.connector_classes())
    assert without == with_sandbox - SANDBOX_ONLY
    assert not SANDBOX_ONLY & {manifest.key for manifest in registry.manifests()}
    for key in SANDBOX_ONLY:
        with pytest.raises(registry.UnknownConnector):
            registry.get_connector_class(key)


def test_a_production_configured_process_does_not_list_them(tmp_path):
    production = {
        "BASTION_ENV": "production",
        "DJANGO_SECRET_KEY": "x" * 50,
        "BASTION_ENCRYPTION_KEYS": "p1:" + "A" * 43 + "=",
        "DATABASE_URL": os.environ["DATABASE_URL"],
        "REDIS_URL": os.environ["REDIS_URL"],
    }
    listed, total = catalogue_in_a_fresh_process(production, tmp_path / ".env")
    assert listed == set() and total > 0

    # An operator who runs the sandbox beside a production-configured server turns them on by name.
    listed, _ = catalogue_in_a_fresh_process({**production, "BASTION_SANDBOX_CONNECTORS": "true"}, tmp_path / ".env")
    assert listed == SANDBOX_ONLY


def test_the_demo_configuration_keeps_them(tmp_path):
    """`make demo` (bastion_site/demo.py): DEBUG off, the sandbox URL set, no BASTION_ENV."""
    demo = {
        "DJANGO_DEBUG": "false",
        "BASTION_SANDBOX_URL": "http://127.0.0.1:8765",
        "DATABASE_URL": os.environ["DATABASE_URL"],
        "REDIS_URL": os.environ["REDIS_URL"],
    }
    listed, _ = catalogue_in_a_fresh_process(demo, tmp_path / ".env")
    assert listed == SANDBOX_ONLY
