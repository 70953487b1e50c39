"""Forms for the admin's structured definition editor: one row per field, one row per cross-field rule."""

from __future__ import annotations

import json
from typing import Any

from django import forms

from scenarios.spec import FIELD_TYPES, DefinitionProblem

JSON_HELP = "JSON; leave empty for none."


def _json_text(value: Any) -> str:
    return "" if value in (None, "", {}, []) else json.dumps(value, ensure_ascii=False)


class DefinitionMetaForm(forms.Form):
    scenario_type = forms.SlugField(max_length=60, help_text="e.g. crisis_management. Fixed once the type exists.")
    name = forms.CharField(max_length=200)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    change_note = forms.CharField(max_length=300, required=False, help_text="What changed in this version (shown in the history).")
    publish = forms.BooleanField(required=False, initial=True, help_text="Published versions are used by new scenarios and are never edited again.")


class FieldRowForm(forms.Form):
    key = forms.CharField(max_length=60)
    label = forms.CharField(max_length=200)
    type = forms.ChoiceField(choices=list(FIELD_TYPES.items()))
    required = forms.BooleanField(required=False)
    section = forms.CharField(max_length=100, required=False)
    help_text = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2, "cols": 30}))
    placeholder = forms.CharField(max_length=200, required=False)
    multiple = forms.BooleanField(required=False, help_text="Channel fields: several channels.")
    options = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3, "cols": 24}), help_text="One per line: value|label.")
    default = forms.CharField(required=False, help_text=JSON_HELP + ' e.g. "OPS"')
    source_connector = forms.CharField(max_length=60, required=False, help_text="Connector key, e.g. ldap, slack.")
    source_entity = forms.CharField(max_length=80, required=False)
    source_mapping = forms.CharField(max_length=300, required=False, help_text="JSONPath from the record to the value, e.g. $.email")
    source_options_label = forms.CharField(max_length=300, required=False, help_text="JSONPath of the option label, e.g. $.name")
    source_label = forms.CharField(max_length=100, required=False, help_text='Button name, e.g. "Active Directory".')
    source_alternatives = forms.CharField(max_length=300, required=False, help_text="Other sources: connector:entity, comma separated.")
    csv_import = forms.BooleanField(required=False)
    prefill = forms.ChoiceField(choices=[("", "—"), ("last_scenario", "Last scenario"), ("default", "Default")], required=False)
    visible_if = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2, "cols": 30}), help_text="JSON Logic condition. " + JSON_HELP)
    validation = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2, "cols": 24}), help_text='{"min": 0, "regex": "…"} ' + JSON_HELP)

    JSON_FIELDS = ("default", "visible_if", "validation")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        for name in self.JSON_FIELDS:
            text = (data.get(name) or "").strip()
            if not text:
                data[name] = None
                continue
            try:
                data[name] = json.loads(text)
            except ValueError as exc:
                self.add_error(name, f"Not valid JSON: {exc}")
        return data

    def to_definition(self) -> dict[str, Any]:
        data = self.cleaned_data
        field: dict[str, Any] = {"key": data["key"].strip(), "label": data["label"].strip(), "type": data["type"]}
        if data.get("required"):
            field["required"] = True
        for name in ("section", "help_text", "placeholder"):
            if (data.get(name) or "").strip():
                field[name] = data[name].strip()
        if data.get("multiple"):
            field["multiple"] = True
        options = []
        for line in (data.get("options") or "").splitlines():
            if line.strip():
                value, _, label = line.partition("|")
                options.append({"value": value.strip(), "label": (label or value).strip()})
        if options:
            field["options"] = options
        if data.get("default") is not None:
            field["default"] = data["default"]
        if (data.get("source_connector") or "").strip():
            source: dict[str, Any] = {"connector": data["source_connector"].strip(), "entity": (data.get("source_entity") or "").strip()}
            source["mapping"] = (data.get("source_mapping") or "").strip() or "$"
            if (data.get("source_options_label") or "").strip():
                source["options_label"] = data["source_options_label"].strip()
            if (data.get("source_label") or "").strip():
                source["label"] = data["source_label"].strip()
            alternatives = []
            for pair in (data.get("source_alternatives") or "").split(","):
                if pair.strip():
                    connector, _, entity = pair.strip().partition(":")
                    alternatives.append({"connector": connector.strip(), "entity": entity.strip()})
            if alternatives:
                source["alternatives"] = alternatives
            field["source"] = source
        if data.get("csv_import"):
            field["csv_import"] = True
        if data.get("prefill"):
            field["prefill"] = data["prefill"]
        if data.get("visible_if") is not None:
            field["visible_if"] = data["visible_if"]
        if data.get("validation") is not None:
            field["validation"] = data["validation"]
        return field

    @staticmethod
    def initial_from(field: dict[str, Any]) -> dict[str, Any]:
        source = field.get("source") or {}
        return {
            "key": field.get("key", ""),
            "label": field.get("label", ""),
            "type": field.get("type", "text"),
            "required": bool(field.get("required")),
            "section": field.get("section", ""),
            "help_text": field.get("help_text", ""),
            "placeholder": field.get("placeholder", ""),
            "multiple": bool(field.get("multiple")),
            "options": "\n".join(f"{o.get('value')}|{o.get('label')}" if isinstance(o, dict) else str(o) for o in field.get("options") or []),
            "default": _json_text(field.get("default")) if "default" in field else "",
            "source_connector": source.get("connector", ""),
            "source_entity": source.get("entity", ""),
            "source_mapping": source.get("mapping", ""),
            "source_options_label": source.get("options_label", ""),
            "source_label": source.get("label", ""),
            "source_alternatives": ", ".join(f"{a.get('connector')}:{a.get('entity')}" for a in source.get("alternatives") or [] if isinstance(a, dict)),
            "csv_import": bool(field.get("csv_import")),
            "prefill": field.get("prefill", ""),
            "visible_if": _json_text(field.get("visible_if")),
            "validation": _json_text(field.get("validation")),
        }


class RuleRowForm(forms.Form):
    key = forms.SlugField(max_length=80)
    message = forms.CharField(max_length=300, help_text="What a person must fix, in plain words.")
    fields = forms.CharField(max_length=300, required=False, help_text="Field keys the message attaches to, comma separated.")
    rule = forms.CharField(widget=forms.Textarea(attrs={"rows": 3, "cols": 40}), help_text="JSON Logic that is true when the values are acceptable.")
    when = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2, "cols": 30}), help_text="Optional JSON Logic: only check when true.")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        for name in ("rule", "when"):
            text = (data.get(name) or "").strip()
            if not text:
                data[name] = None
                continue
            try:
                data[name] = json.loads(text)
            except ValueError as exc:
                self.add_error(name, f"Not valid JSON: {exc}")
        return data

    def to_definition(self) -> dict[str, Any]:
        data = self.cleaned_data
        rule = {
            "key": data["key"],
            "message": data["message"].strip(),
            "rule": data["rule"],
            "fields": [f.strip() for f in (data.get("fields") or "").split(",") if f.strip()],
        }
        if data.get("when") is not None:
            rule["when"] = data["when"]
        return rule

    @staticmethod
    def initial_from(rule: dict[str, Any]) -> dict[str, Any]:
        return {
            "key": rule.get("key", ""),
            "message": rule.get("message", ""),
            "fields": ", ".join(rule.get("fields") or []),
            "rule": _json_text(rule.get("rule")),
            "when": _json_text(rule.get("when")),
        }


FieldFormSet = forms.formset_factory(FieldRowForm, extra=1, can_delete=True, can_order=True)
RuleFormSet = forms.formset_factory(RuleRowForm, extra=1, can_delete=True)

ATTRIBUTE_TO_FORM_FIELD = {
    "source.connector": "source_connector",
    "source.entity": "source_entity",
    "source.mapping": "source_mapping",
    "source.options_label": "source_options_label",
    "visible_if": "visible_if",
    "validation": "validation",
    "options": "options",
    "key": "key",
    "label": "label",
    "type": "type",
    "default": "default",
    "prefill": "prefill",
    "csv_import": "csv_import",
}


def attach_problems(field_forms: list[FieldRowForm], rule_forms: list[RuleRowForm], problems: list[DefinitionProblem]) -> None:
    """Show each definition problem next to the row and input it is about (besides the list at the top)."""
    by_key = {f.cleaned_data.get("key"): f for f in field_forms if hasattr(f, "cleaned_data")}
    rules_by_key = {f.cleaned_data.get("key"): f for f in rule_forms if hasattr(f, "cleaned_data")}
    for problem in problems:
        if problem.field.startswith("rules."):
            form = rules_by_key.get(problem.field[6:])
            name = problem.attribute if problem.attribute in ("rule", "when", "fields", "message", "key") else None
        else:
            form = by_key.get(problem.field)
            attribute = problem.attribute.split("[")[0] if problem.attribute.startswith("source.alternatives") else problem.attribute
            name = (
                "source_alternatives"
                if attribute == "source.alternatives"
                else ATTRIBUTE_TO_FORM_FIELD.get(attribute.split(".validation")[0]) or ("validation" if attribute.startswith("validation") else None)
            )
        if form is not None:
            form.add_error(name if name in form.fields else None, str(problem))
