"""Every setting the code reads is declared in settings (with its default), and every Celery task has a time limit."""

from __future__ import annotations

import re
from pathlib import Path

from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
APPS = ("accounts", "common", "integrations", "people", "sync", "scenarios", "forms_engine", "playbooks", "data_rights", "bastion_site")
# getattr(settings, "BASTION_X", …), _setting("BASTION_X", …), hasattr(settings, "BASTION_X"), settings.BASTION_X
READS = re.compile(
    r"""(?:getattr|hasattr)\(\s*settings\s*,\s*["'](BASTION_[A-Z0-9_]+)["']|_setting\(\s*["'](BASTION_[A-Z0-9_]+)["']|settings\.(BASTION_[A-Z0-9_]+)"""
)


def setting_reads() -> dict[str, str]:
    found: dict[str, str] = {}
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            for match in READS.finditer(path.read_text(encoding="utf-8")):
                name = next(group for group in match.groups() if group)
                found.setdefault(name, str(path.relative_to(ROOT)))
    return found


def test_every_setting_the_code_reads_is_declared():
    undeclared = {name: where for name, where in setting_reads().items() if not hasattr(settings, name)}
    assert undeclared == {}


def test_the_settings_once_read_undeclared_have_their_defaults():
    from bastion_site import settings as declared  # the module, not the test-adjusted LazySettings

    assert declared.BASTION_SYNC_HTTP_RETRIES == 4 and declared.BASTION_SYNC_HTTP_BACKOFF == 0.5
    assert declared.BASTION_CSV_IMPORT_BATCH_SIZE == 10_000
    assert declared.BASTION_PLAYBOOK_STEP_LEASE_SECONDS == 30.0 and declared.BASTION_PLAYBOOK_RETRY_BASE_SECONDS == 1.0


def test_every_task_has_a_time_limit():
    from bastion_site.celery import app

    app.loader.import_default_modules()
    assert app.conf.task_soft_time_limit and app.conf.task_time_limit > app.conf.task_soft_time_limit
    tasks = {name: task for name, task in app.tasks.items() if not name.startswith("celery.")}
    assert tasks, "no Bastion task registered"
    for name, task in tasks.items():
        hard = task.time_limit or app.conf.task_time_limit
        assert hard and hard <= app.conf.broker_transport_options["visibility_timeout"], name
    assert app.tasks["sync.tasks.csv_import_task"].time_limit == 3300
