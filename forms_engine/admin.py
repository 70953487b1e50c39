"""Admin for scenario definitions: validated JSON form, a structured editor (one row per field and rule) and a preview."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import path, reverse
from django.utils.html import format_html

from common.errors import ApplicationError
from forms_engine.forms import sections, widgets
from forms_engine.schema import definition_json_schema, field_json_schema
from scenarios.admin_forms import DefinitionMetaForm, FieldFormSet, FieldRowForm, RuleFormSet, RuleRowForm, attach_problems
from scenarios.models import ScenarioDataModel
from scenarios.services import data_model_create, data_model_revise
from scenarios.spec import FIELD_TYPES, STAKEHOLDER_ROLES, definition_problems, field_options


class ScenarioDataModelForm(forms.ModelForm):
    """The raw form also refuses a broken definition, with the same messages as the structured editor."""

    class Meta:
        model = ScenarioDataModel
        fields = ["scenario_type", "name", "description", "field_definitions", "validation_rules", "is_published", "change_note"]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if "field_definitions" in data and "validation_rules" in data:
            scenario_type = data.get("scenario_type") or (self.instance.scenario_type if self.instance.pk else "")
            problems = definition_problems(data["field_definitions"], data["validation_rules"], scenario_type=scenario_type)
            if problems:
                raise forms.ValidationError([str(p) for p in problems])
        return data


def preview_context(data_model_like: Any) -> dict[str, Any]:
    """Render a definition without an organization: sources shown as not connected, defaults pre-filled."""
    fields = []
    for field_def in data_model_like.field_definitions:
        options = field_options(field_def)
        if field_def["type"] == "stakeholder_list" and not options:
            options = [{"value": v, "label": label} for v, label in STAKEHOLDER_ROLES]
        source = field_def.get("source")
        fields.append(
            {
                "key": field_def["key"],
                "label": field_def.get("label", field_def["key"]),
                "type": field_def["type"],
                "type_label": FIELD_TYPES.get(field_def["type"], field_def["type"]),
                "required": bool(field_def.get("required")),
                "help_text": field_def.get("help_text", ""),
                "section": field_def.get("section") or "Details",
                "placeholder": field_def.get("placeholder", ""),
                "multiple": bool(field_def.get("multiple")),
                "options": options,
                "source": {
                    "connectors": [
                        {
                            "connector": s.get("connector"),
                            "name": s.get("label") or s.get("connector"),
                            "connected": False,
                            "import_label": f"Import from {s.get('connector')}",
                        }
                        for s in [source] + [a for a in source.get("alternatives") or [] if isinstance(a, dict)]
                    ]
                }
                if source
                else None,
                "csv_import": bool(field_def.get("csv_import")),
                "visible_if": field_def.get("visible_if"),
                "condition_hint": "Shown when: " + json.dumps(field_def["visible_if"]) if field_def.get("visible_if") else "",
                "value_origin": None,
                "json_schema": field_json_schema(field_def),
            }
        )
    schema = {"fields": fields}
    defaults = {f["key"]: f["default"] for f in data_model_like.field_definitions if "default" in f}
    return {
        "preview_sections": sections(widgets(schema, defaults, {}, None)),
        "preview_json_schema": json.dumps(definition_json_schema(data_model_like), indent=2),
    }


class _Draft:
    """A definition being edited, shaped like a ScenarioDataModel for the preview."""

    def __init__(self, scenario_type: str, name: str, version: int, field_definitions: list, validation_rules: list):
        self.scenario_type, self.name, self.version = scenario_type, name, version
        self.field_definitions, self.validation_rules = field_definitions, validation_rules


@admin.register(ScenarioDataModel)
class ScenarioDataModelAdmin(admin.ModelAdmin):
    form = ScenarioDataModelForm
    list_display = ["scenario_type", "version", "name", "is_published", "scenario_count", "updated_at", "structured_editor"]
    list_filter = ["scenario_type", "is_published"]
    search_fields = ["scenario_type", "name"]
    readonly_fields = ["version", "data_source_mappings", "published_at", "created_by", "structured_editor"]

    @admin.display(description="Scenarios")
    def scenario_count(self, obj: ScenarioDataModel) -> int:
        return obj.scenarios.count()

    @admin.display(description="Editor")
    def structured_editor(self, obj: ScenarioDataModel) -> str:
        if not obj.pk:
            return "—"
        return format_html('<a href="{}">Edit fields (structured editor)</a>', reverse("admin:scenarios_scenariodatamodel_structure", args=[obj.pk]))

    def get_urls(self):
        return [
            path("structure/new/", self.admin_site.admin_view(self.structure_view), name="scenarios_scenariodatamodel_structure_new"),
            path("<uuid:pk>/structure/", self.admin_site.admin_view(self.structure_view), name="scenarios_scenariodatamodel_structure"),
        ] + super().get_urls()

    def save_model(self, request: HttpRequest, obj: ScenarioDataModel, form: forms.ModelForm, change: bool) -> None:
        """Saving goes through the services: a published version is never overwritten, a new version is made instead."""
        data = form.cleaned_data
        try:
            if change:
                original = ScenarioDataModel.objects.get(pk=obj.pk)
                saved = data_model_revise(
                    data_model=original,
                    field_definitions=data["field_definitions"],
                    validation_rules=data["validation_rules"],
                    name=data["name"],
                    description=data["description"],
                    publish=data["is_published"],
                    change_note=data["change_note"],
                    actor=request.user,
                    request=request,
                )
            else:
                saved = data_model_create(
                    scenario_type=data["scenario_type"],
                    name=data["name"],
                    description=data["description"],
                    field_definitions=data["field_definitions"],
                    validation_rules=data["validation_rules"],
                    publish=data["is_published"],
                    change_note=data["change_note"],
                    actor=request.user,
                    request=request,
                )
        except ApplicationError as exc:  # raced with another edit; the form already validated the definition
            raise PermissionDenied(exc.message)
        obj.pk, obj.version = saved.pk, saved.version
        obj._state.adding = False
        obj.refresh_from_db()

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields + (["scenario_type"] if obj else [])

    def structure_view(self, request: HttpRequest, pk=None) -> HttpResponse:
        data_model = get_object_or_404(ScenarioDataModel, pk=pk) if pk else None
        if not self.has_change_permission(request, data_model) if data_model else not self.has_add_permission(request):
            raise PermissionDenied
        problems: list[str] = []
        preview: dict[str, Any] = {}
        if request.method == "POST":
            # An existing definition's type is shown disabled, and a browser never posts a disabled input: the form takes
            # it from `initial` instead of failing with "This field is required" on every save.
            meta = DefinitionMetaForm(request.POST, initial={"scenario_type": data_model.scenario_type} if data_model else None)
            if data_model:
                meta.fields["scenario_type"].disabled = True
            field_set = FieldFormSet(request.POST, prefix="fields")
            rule_set = RuleFormSet(request.POST, prefix="rules")
            if meta.is_valid() and field_set.is_valid() and rule_set.is_valid():
                ordered = field_set.ordered_forms if field_set.can_order else field_set.forms
                field_forms = [f for f in ordered if f.has_changed() and f not in field_set.deleted_forms and f.cleaned_data.get("key")]
                rule_forms = [f for f in rule_set.forms if f.has_changed() and f not in rule_set.deleted_forms and f.cleaned_data.get("key")]
                field_definitions = [f.to_definition() for f in field_forms]
                validation_rules = [f.to_definition() for f in rule_forms]
                scenario_type = data_model.scenario_type if data_model else meta.cleaned_data["scenario_type"]
                found = definition_problems(field_definitions, validation_rules, scenario_type=scenario_type)
                if found:
                    problems = [str(p) for p in found]
                    attach_problems(field_forms, rule_forms, found)
                elif "_preview" in request.POST:
                    preview = preview_context(
                        _Draft(scenario_type, meta.cleaned_data["name"], data_model.version if data_model else 1, field_definitions, validation_rules)
                    )
                else:
                    saved = self._save_structure(request, data_model, meta.cleaned_data, field_definitions, validation_rules)
                    return HttpResponseRedirect(reverse("admin:scenarios_scenariodatamodel_structure", args=[saved.pk]))
            else:
                problems = ["Some rows have errors: see the messages next to them."]
        else:
            meta = DefinitionMetaForm(
                initial={"scenario_type": data_model.scenario_type, "name": data_model.name, "description": data_model.description, "publish": True}
                if data_model
                else {"publish": True}
            )
            field_set = FieldFormSet(prefix="fields", initial=[FieldRowForm.initial_from(f) for f in (data_model.field_definitions if data_model else [])])
            rule_set = RuleFormSet(prefix="rules", initial=[RuleRowForm.initial_from(r) for r in (data_model.validation_rules if data_model else [])])
            if data_model:
                preview = preview_context(data_model)
        if data_model:
            meta.fields["scenario_type"].disabled = True
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Structured editor — {data_model}" if data_model else "New scenario definition",
            "data_model": data_model,
            "meta": meta,
            "field_set": field_set,
            "rule_set": rule_set,
            "problems": problems,
            **preview,
        }
        return render(request, "forms_engine/admin_structure.html", context, status=400 if problems else 200)

    def _save_structure(
        self, request: HttpRequest, data_model: ScenarioDataModel | None, meta: dict[str, Any], field_definitions: list, validation_rules: list
    ):
        if data_model is None:
            saved = data_model_create(
                scenario_type=meta["scenario_type"],
                name=meta["name"],
                description=meta["description"],
                field_definitions=field_definitions,
                validation_rules=validation_rules,
                publish=meta["publish"],
                change_note=meta["change_note"],
                actor=request.user,
                request=request,
            )
            messages.success(request, f"Created {saved}.")
            return saved
        saved = data_model_revise(
            data_model=data_model,
            field_definitions=field_definitions,
            validation_rules=validation_rules,
            name=meta["name"],
            description=meta["description"],
            publish=meta["publish"],
            change_note=meta["change_note"],
            actor=request.user,
            request=request,
        )
        if saved.pk != data_model.pk:
            messages.success(request, f"Saved as version {saved.version}. Existing scenarios keep version {data_model.version} until they are upgraded.")
        else:
            messages.success(request, f"Saved {saved}.")
        return saved
