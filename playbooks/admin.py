"""Admin: ops staff edit playbook templates with inline steps; runs, steps and tasks are inspectable."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages

from common.errors import ApplicationError
from playbooks.models import Playbook, PlaybookRun, PlaybookStepTemplate, PlaybookTemplate, StepRun, Task, TimelineEvent
from playbooks.rendering import validate_template
from playbooks.services import playbook_run_cancel


class StepTemplateForm(forms.ModelForm):
    class Meta:
        model = PlaybookStepTemplate
        fields = [
            "template",
            "position",
            "key",
            "name",
            "connector_key",
            "action",
            "payload_template",
            "depends_on",
            "for_each",
            "items",
            "item_key",
            "is_bulk",
            "bulk_chunk_size",
            "is_required",
            "condition",
            "task_kind",
            "description",
        ]

    def clean(self):
        data = super().clean()
        errors = validate_template(data.get("payload_template") or {}) + validate_template(data.get("description") or "")
        if data.get("for_each") and data["for_each"] != "items":
            errors += validate_template("{{ " + data["for_each"] + " }}")
        depends_on = data.get("depends_on") or []
        if not isinstance(depends_on, list) or not all(isinstance(k, str) for k in depends_on):
            errors.append("depends_on must be a list of step keys.")
        elif data.get("key") in depends_on:
            errors.append("A step cannot depend on itself.")
        if errors:
            raise forms.ValidationError(errors)
        return data


class StepTemplateInline(admin.StackedInline):
    model = PlaybookStepTemplate
    form = StepTemplateForm
    extra = 0
    fields = [
        ("position", "key", "name"),
        ("connector_key", "action", "task_kind"),
        "payload_template",
        ("depends_on", "for_each", "item_key"),
        "items",
        ("is_bulk", "bulk_chunk_size", "is_required"),
        "condition",
        "description",
    ]


@admin.register(PlaybookTemplate)
class PlaybookTemplateAdmin(admin.ModelAdmin):
    list_display = ["name", "scenario_type", "is_active", "manual_baseline_minutes", "step_count"]
    list_filter = ["scenario_type", "is_active"]
    search_fields = ["name", "scenario_type"]
    inlines = [StepTemplateInline]

    @admin.display(description="Steps")
    def step_count(self, template: PlaybookTemplate) -> int:
        return template.steps.count()

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        keys = set(form.instance.steps.values_list("key", flat=True))
        for step in form.instance.steps.all():
            unknown = set(step.depends_on or []) - keys
            if unknown:
                self.message_user(request, f"Step '{step.key}' depends on unknown steps: {', '.join(sorted(unknown))}.", level="warning")


@admin.register(Playbook)
class PlaybookAdmin(admin.ModelAdmin):
    list_display = ["name", "organization", "template", "status", "created_at"]
    list_filter = ["status", "template"]
    search_fields = ["name", "scenario__title"]
    raw_id_fields = ["scenario", "created_by"]


class StepRunInline(admin.TabularInline):
    model = StepRun
    extra = 0
    can_delete = False
    fields = ["step_key", "item_key", "status", "attempts", "external_id", "error_class", "last_error", "duration_ms", "undo_of"]
    readonly_fields = fields
    show_change_link = True


class TimelineInline(admin.TabularInline):
    model = TimelineEvent
    extra = 0
    can_delete = False
    fields = ["at", "kind", "message"]
    readonly_fields = fields


@admin.register(PlaybookRun)
class PlaybookRunAdmin(admin.ModelAdmin):
    list_display = ["playbook", "organization", "status", "started_at", "duration_ms", "undo_state"]
    list_filter = ["status", ("undo_requested_at", admin.EmptyFieldListFilter)]
    readonly_fields = ["started_at", "finished_at", "duration_ms", "error_summary", "context", "undo_requested_at", "undo_requested_by", "undo_state"]
    inlines = [StepRunInline, TimelineInline]
    actions = ["cancel_and_undo"]

    @admin.display(description="Undo")
    def undo_state(self, run: PlaybookRun) -> str:
        if run.undo_requested_at is None:
            return "—"
        counts: dict[str, int] = {}
        for status in run.step_runs.filter(undo_of__isnull=False).values_list("status", flat=True):
            counts[status] = counts.get(status, 0) + 1
        return ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "requested"

    @admin.action(description="Cancel and undo what the selected runs created in the vendors")
    def cancel_and_undo(self, request, queryset) -> None:
        for run in queryset:
            try:
                outcome = playbook_run_cancel(run=run, undo=True, actor=request.user, request=request)
                self.message_user(request, f"{run}: undoing {len(outcome.undo_queued)} object(s).", level=messages.SUCCESS)
            except ApplicationError as error:
                self.message_user(request, f"{run}: {error.message}", level=messages.WARNING)


@admin.register(StepRun)
class StepRunAdmin(admin.ModelAdmin):
    list_display = ["step_key", "item_key", "run", "status", "attempts", "external_id", "error_class", "undo_of"]
    list_filter = ["status", "error_class", "connector_key", ("undo_of", admin.EmptyFieldListFilter)]
    search_fields = ["step_key", "external_id", "idempotency_key"]
    readonly_fields = ["idempotency_key", "payload", "result", "external_id", "external_url", "last_error", "undo_of"]


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    list_display = ["title", "kind", "status", "status_source", "owner", "organization", "last_event_at", "last_polled_at"]
    list_filter = ["kind", "status", "is_done", "status_source"]
    readonly_fields = ["status_source", "last_event_at", "last_polled_at"]
    search_fields = ["title", "external_id", "external_key", "owner"]
