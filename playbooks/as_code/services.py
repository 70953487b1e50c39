"""Playbook templates as code: export to / import from YAML (validated by the published JSON Schema), versions, restore, dry run."""

from __future__ import annotations

import difflib
import hashlib
import json
from typing import Any

import jsonschema
import yaml
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from accounts.models import Organization
from accounts.services import audit_record
from common.errors import ApplicationError
from playbooks.as_code.models import PlaybookTemplateVersion
from playbooks.as_code.schema import FORMAT, STEP, TEMPLATE_SCHEMA
from playbooks.models import Playbook, PlaybookStepTemplate, PlaybookTemplate
from playbooks.rendering import validate_template
from scenarios.logic import LogicError, check_expression
from scenarios.models import Scenario, ScenarioDataModel

STEP_FIELDS = list(STEP["properties"])
MAX_YAML_BYTES = 512 * 1024
_VALIDATOR = jsonschema.Draft202012Validator(TEMPLATE_SCHEMA)


def template_document(template: PlaybookTemplate) -> dict[str, Any]:
    """The template as a plain document (the YAML file's content)."""
    return {
        "format": FORMAT,
        "scenario_type": template.scenario_type,
        "name": template.name,
        "description": template.description,
        "is_active": template.is_active,
        "manual_baseline_minutes": template.manual_baseline_minutes,
        "steps": [{name: getattr(step, name) for name in STEP_FIELDS} for step in template.steps.order_by("position", "key")],
    }


def document_yaml(document: dict[str, Any]) -> str:
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=120)


def _digest(document: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(document, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def template_export(*, template: PlaybookTemplate) -> str:
    """The template's YAML file; the current state is recorded as a version first if it changed (an edit in the admin)."""
    version = template_version_ensure(template=template, note="Recorded at export")
    return version.yaml


def _invalid(problems: list[str]) -> ApplicationError:
    return ApplicationError(
        f"The template file is not valid: {problems[0]}" + (f" ({len(problems) - 1} more)" if len(problems) > 1 else ""),
        code="template_invalid",
        fields={"yaml": problems},
    )


def template_parse(text: str | bytes) -> dict[str, Any]:
    """YAML → a document checked against the JSON Schema and Bastion's own rules; raises ApplicationError listing every problem."""
    if isinstance(text, bytes):
        if len(text) > MAX_YAML_BYTES:
            raise _invalid([f"The file is larger than {MAX_YAML_BYTES // 1024} KB."])
        text = text.decode("utf-8", errors="replace")
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise _invalid([f"Not YAML: {str(error).splitlines()[0]}"])
    if not isinstance(document, dict):
        raise _invalid(["The file must be a mapping (format, scenario_type, name, steps…)."])
    problems = [f"{'/'.join(str(p) for p in error.absolute_path) or '(top)'}: {error.message}" for error in _VALIDATOR.iter_errors(document)]
    if problems:
        raise _invalid(problems)
    problems = _semantic_problems(document)
    if problems:
        raise _invalid(problems)
    return document


def _semantic_problems(document: dict[str, Any]) -> list[str]:
    from playbooks.human.config import is_human_connector, template_problem

    problems: list[str] = []
    keys = [step["key"] for step in document["steps"]]
    duplicates = sorted({key for key in keys if keys.count(key) > 1})
    if duplicates:
        problems.append(f"step keys must be unique: {', '.join(duplicates)}")
    human_keys = {s["key"] for s in document["steps"] if is_human_connector(s["connector_key"])}
    for step in document["steps"]:
        where = f"steps/{step['key']}"
        for dependency in step.get("depends_on") or []:
            key, _, outcome = dependency.partition(":")
            if key not in keys:
                problems.append(f"{where}: depends on unknown step '{key}'")
            elif key == step["key"]:
                problems.append(f"{where}: a step cannot depend on itself")
            elif outcome and key not in human_keys:
                problems.append(f"{where}: only approvals have outcomes ('{dependency}')")
        problems.extend(f"{where}: {p}" for p in validate_template(step.get("payload_template") or {}) + validate_template(step.get("description") or ""))
        if step.get("condition") is not None:
            try:
                check_expression(step["condition"])
            except LogicError as error:
                problems.append(f"{where}/condition: {error}")
        if is_human_connector(step["connector_key"]):
            problem = template_problem(step["action"], step.get("payload_template") or {})
            if problem:
                problems.append(f"{where}: {problem}")
    return problems


@transaction.atomic
def template_version_ensure(*, template: PlaybookTemplate, note: str = "", actor: Any = None) -> PlaybookTemplateVersion:
    """Record the template's current state as a new version unless the latest version already is that state."""
    template = PlaybookTemplate.objects.select_for_update().get(pk=template.pk)
    document = template_document(template)
    digest = _digest(document)
    latest = template.versions.order_by("-number").first()
    if latest is not None and latest.digest == digest:
        return latest
    return PlaybookTemplateVersion.objects.create(
        template=template,
        number=(latest.number + 1) if latest else 1,
        document=document,
        yaml=document_yaml(document),
        digest=digest,
        note=note[:300],
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )


@transaction.atomic
def template_import(
    *, text: str | bytes, actor: Any = None, note: str = "", request: HttpRequest | None = None
) -> tuple[PlaybookTemplate, PlaybookTemplateVersion, bool]:
    """Create or update the template named in the file (scenario type + name); returns (template, version, changed)."""
    document = template_parse(text)
    template = PlaybookTemplate.objects.select_for_update().filter(scenario_type=document["scenario_type"], name=document["name"]).first()
    if template is not None:
        template_version_ensure(template=template, note="Recorded before an import", actor=actor)  # an admin edit is not lost
        before = template.versions.order_by("-number").first()
        if before is not None and before.digest == _digest(_normalized(document)):
            return template, before, False
    template = template or PlaybookTemplate(scenario_type=document["scenario_type"], name=document["name"])
    template.description = document.get("description", "")
    template.is_active = document.get("is_active", True)
    template.manual_baseline_minutes = document.get("manual_baseline_minutes", 120)
    template.save()
    template.steps.all().delete()
    for position, step in enumerate(document["steps"]):
        PlaybookStepTemplate.objects.create(template=template, position=position, **{**_step_defaults(), **step})
    version = template_version_ensure(template=template, note=note or "Imported", actor=actor)
    audit_record(
        action="playbook_template.import", actor=actor, target=template, changes={"version": version.number, "steps": len(document["steps"])}, request=request
    )
    return template, version, True


def _step_defaults() -> dict[str, Any]:
    return {
        "payload_template": {},
        "depends_on": [],
        "for_each": "",
        "items": [],
        "item_key": "",
        "is_bulk": False,
        "bulk_chunk_size": 50,
        "is_required": True,
        "condition": None,
        "task_kind": "",
        "description": "",
    }


def _normalized(document: dict[str, Any]) -> dict[str, Any]:
    """The document as export would write it back (defaults filled in), so an unchanged file compares equal."""
    return {
        "format": FORMAT,
        "scenario_type": document["scenario_type"],
        "name": document["name"],
        "description": document.get("description", ""),
        "is_active": document.get("is_active", True),
        "manual_baseline_minutes": document.get("manual_baseline_minutes", 120),
        "steps": [{name: {**_step_defaults(), **step}.get(name) for name in STEP_FIELDS} for step in document["steps"]],
    }


def template_version_diff(*, version: PlaybookTemplateVersion, against: PlaybookTemplateVersion | None = None) -> str:
    """A unified diff of the YAML against the previous version (or `against`)."""
    against = against or version.template.versions.filter(number__lt=version.number).order_by("-number").first()
    before = against.yaml if against else ""
    label = f"v{against.number}" if against else "(none)"
    return "".join(difflib.unified_diff(before.splitlines(keepends=True), version.yaml.splitlines(keepends=True), fromfile=label, tofile=f"v{version.number}"))


def template_version_restore(*, version: PlaybookTemplateVersion, actor: Any = None, request: HttpRequest | None = None) -> PlaybookTemplateVersion:
    """Make an earlier version current again; the restore is itself a new version."""
    _template, restored, _changed = template_import(text=version.yaml, actor=actor, note=f"Restored from v{version.number}", request=request)
    return restored


def template_dry_run(
    *, template: PlaybookTemplate, organization: Organization, values: dict[str, Any] | None = None, integration_bindings: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Render every step against the organization's integrations (the sandbox in a demo) and say what would happen; nothing is created."""
    from playbooks import services as engine

    data_model = ScenarioDataModel.objects.filter(scenario_type=template.scenario_type).order_by("-version").first()
    if data_model is None:
        raise ApplicationError(f"No scenario definition for {template.scenario_type}.", code="no_definition")
    sample = {field["key"]: field["default"] for field in data_model.field_definitions if "default" in field}
    sample.update(values or {})
    scenario = Scenario(
        organization=organization, data_model=data_model, scenario_type=template.scenario_type, title=str(sample.get("title") or "Dry run"), values=sample
    )
    playbook = Playbook(
        organization=organization, scenario=scenario, template=template, name=f"Dry run: {template.name}", integration_bindings=dict(integration_bindings or {})
    )
    playbook.created_at = timezone.now()
    return [
        {
            "key": p.key,
            "name": p.name,
            "connector": p.connector_name,
            "action": p.action,
            "will_run": p.will_run,
            "count": p.count,
            "description": p.description,
            "blocked_reason": p.blocked_reason,
            "integration": p.integration,
            "sample_payload": p.sample_payload,
            "errors": p.errors,
        }
        for p in engine.playbook_preview(playbook=playbook)
    ]
