"""Admin for custom connectors: edit the draft, save it as a validated version (problems listed by path), publish, export."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.utils.html import format_html

from accounts.services import audit_record
from common.errors import ApplicationError
from integrations.custom import drafts, services
from integrations.custom.models import CustomConnector, CustomConnectorVersion
from integrations.custom.openapi import MAX_DOCUMENT_BYTES, openapi_parse, openapi_summary


class VersionInline(admin.TabularInline):
    model = CustomConnectorVersion
    extra = 0
    fields = ["number", "notes", "created_by", "created_at"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


class CustomConnectorAdminForm(forms.ModelForm):
    """The draft is checked like the builder checks it when "save as a new version" is ticked."""

    openapi_file = forms.FileField(required=False, help_text="Start from the vendor's OpenAPI document (JSON or YAML, 4 MB at most).")
    save_as_version = forms.BooleanField(required=False, help_text="Validate the draft and save it as the next version.")
    version_notes = forms.CharField(required=False, max_length=500)

    class Meta:
        model = CustomConnector
        fields = ["organization", "key", "name", "draft"]

    def clean_openapi_file(self):
        upload = self.cleaned_data.get("openapi_file")
        if upload is None:
            return None
        if upload.size > MAX_DOCUMENT_BYTES:
            raise forms.ValidationError("The document is larger than 4 MB.")
        try:
            return openapi_summary(openapi_parse(upload.read()))
        except ApplicationError as error:
            raise forms.ValidationError(error.message) from error

    def clean(self):
        cleaned = super().clean()
        summary = cleaned.get("openapi_file")
        if summary:
            self.instance.openapi = summary
            if not (cleaned.get("draft") or "").strip():
                cleaned["draft"] = drafts.draft_start(key=cleaned.get("key") or "custom", name=cleaned.get("name") or summary["title"], summary=summary)
        if cleaned.get("save_as_version"):
            try:
                services.spec_check(services.spec_parse(cleaned.get("draft") or ""))
            except ApplicationError as error:
                problems = [f"{path}: {message}" for path, messages_ in error.fields.items() for message in messages_]
                raise forms.ValidationError({"draft": [error.message, *problems]}) from error
        return cleaned


@admin.register(CustomConnector)
class CustomConnectorAdmin(admin.ModelAdmin):
    form = CustomConnectorAdminForm
    list_display = ["name", "key", "organization", "status", "current_version", "updated_at"]
    list_filter = ["status", "organization"]
    search_fields = ["name", "key", "organization__name"]
    readonly_fields = ["status", "current_version", "builder_link", "created_at", "updated_at"]
    fields = ["organization", "key", "name", "openapi_file", "draft", "save_as_version", "version_notes", *readonly_fields]
    inlines = [VersionInline]
    actions = ["publish_latest"]

    def has_delete_permission(self, request, obj=None):
        """Not while an integration runs it: its syncs and steps would fail with an unknown connector."""
        from integrations.models import Integration

        if obj is not None and Integration.objects.filter(connector_key=obj.connector_key).exists():
            return False
        return super().has_delete_permission(request, obj)

    @admin.display(description="Builder")
    def builder_link(self, obj):
        if not obj.pk:
            return "—"
        return format_html(
            '<a href="/integrations/custom/{}/">Open the builder</a> · <a href="/integrations/custom/{}/export/">Export spec</a>', obj.pk, obj.pk
        )

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
        if not change:
            audit_record(
                action="custom_connector.create",
                organization=obj.organization,
                actor=request.user,
                target=obj,
                changes={"name": obj.name, "key": obj.key, "from_openapi": bool(obj.openapi)},
                request=request,
            )
        if form.cleaned_data.get("save_as_version"):
            version = services.custom_connector_version_save(
                connector=obj, text=obj.draft, notes=form.cleaned_data.get("version_notes", ""), actor=request.user, request=request
            )
            messages.success(request, f"Version {version.number} saved.")

    @admin.action(description="Publish the latest version")
    def publish_latest(self, request, queryset):
        for connector in queryset:
            try:
                services.custom_connector_publish(connector=connector, actor=request.user, request=request)
            except ApplicationError as error:
                self.message_user(request, f"{connector}: {error.message}", messages.ERROR)
            else:
                self.message_user(request, f"{connector}: published.", messages.SUCCESS)


@admin.register(CustomConnectorVersion)
class CustomConnectorVersionAdmin(admin.ModelAdmin):
    """Saved versions are never edited (integrations run a published one): listed and read here, added by the builder."""

    list_display = ["connector", "number", "created_by", "created_at"]
    list_filter = ["connector__organization"]
    readonly_fields = ["connector", "number", "spec", "notes", "created_by", "created_at"]
    search_fields = ["connector__name", "notes"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
