"""Admin for template versions: the YAML, the diff against the previous version, and a Restore action."""

from django.contrib import admin, messages
from django.utils.html import format_html

from common.errors import ApplicationError
from playbooks.as_code.models import PlaybookTemplateVersion
from playbooks.as_code.services import template_version_diff, template_version_restore


@admin.register(PlaybookTemplateVersion)
class PlaybookTemplateVersionAdmin(admin.ModelAdmin):
    list_display = ["template", "number", "note", "created_by", "created_at"]
    list_filter = ["template"]
    fields = ["template", "number", "note", "created_by", "created_at", "diff", "yaml"]
    readonly_fields = fields
    actions = ["restore"]

    @admin.display(description="Changes from the previous version")
    def diff(self, version: PlaybookTemplateVersion) -> str:
        return format_html('<pre class="template-diff">{}</pre>', template_version_diff(version=version) or "(no change)")

    @admin.action(description="Restore the selected version (makes a new version)")
    def restore(self, request, queryset) -> None:
        if queryset.count() != 1:
            self.message_user(request, "Choose exactly one version to restore.", messages.ERROR)
            return
        try:
            restored = template_version_restore(version=queryset.get(), actor=request.user, request=request)
        except ApplicationError as error:
            self.message_user(request, error.message, messages.ERROR)
            return
        self.message_user(request, f"Restored as v{restored.number}.", messages.SUCCESS)

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
