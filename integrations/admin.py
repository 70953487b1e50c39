"""Admin for integrations, data sources, credentials (contents never shown) and the call log."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import flatten_fieldsets

from common.errors import ApplicationError
from integrations import selectors, services
from integrations.custom.receivers import custom_connector_organization_check
from integrations.models import DataSource, Integration, IntegrationCall, IntegrationCredential


class CredentialInline(admin.TabularInline):
    model = IntegrationCredential
    extra = 0
    fields = ["credential_type", "scopes", "expires_at", "refreshed_at", "updated_at"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


class DataSourceInline(admin.TabularInline):
    model = DataSource
    extra = 0
    fields = ["entity_type", "is_enabled", "discovered_at", "last_synced_at", "is_stale", "schedule"]
    readonly_fields = ["discovered_at", "last_synced_at", "is_stale"]


class IntegrationAdminForm(forms.ModelForm):
    """The same checks as the API and the wizard: base URL and URL settings http(s), hosts the SSRF guard allows."""

    class Meta:
        model = Integration
        fields = "__all__"  # noqa: DJ007 - the admin shows every column; readonly ones are listed on the ModelAdmin

    def clean(self) -> dict:
        cleaned = super().clean()
        connector_key = cleaned.get("connector_key") or getattr(self.instance, "connector_key", "")
        try:
            custom_connector_organization_check(connector_key, cleaned.get("organization") and cleaned["organization"].pk)
            if "base_url" in cleaned:
                cleaned["base_url"] = services.base_url_validate(cleaned.get("base_url") or "")
            if "config" in cleaned and connector_key:
                cleaned["config"] = services.config_validate(services.connector_class_for(connector_key).manifest, cleaned.get("config") or {})
        except ApplicationError as error:
            field_errors = {name: messages_ for name, messages_ in error.fields.items() if name in ("base_url", "config", "connector_key")}
            other = [message for name, messages_ in error.fields.items() if name not in field_errors for message in messages_]
            if other:
                field_errors.setdefault("config", []).extend(other)
            raise forms.ValidationError(field_errors or error.message) from error
        return cleaned


@admin.register(Integration)
class IntegrationAdmin(admin.ModelAdmin):
    form = IntegrationAdminForm
    list_display = ["display_name", "connector_key", "organization", "status", "last_success_at", "error_count", "calls_24h", "failures_24h"]
    list_filter = ["status", "connector_key", "organization"]
    search_fields = ["display_name", "connector_key", "organization__name", "external_account_id"]
    readonly_fields = [
        "last_sync_at",
        "last_success_at",
        "last_error",
        "last_error_at",
        "error_count",
        "calls_24h",
        "failures_24h",
        "auth_failed_at",
        "webhook_secret_revealed_at",
        "created_at",
        "updated_at",
    ]
    inlines = [DataSourceInline, CredentialInline]
    actions = ["test_connection", "discover_fields"]

    @admin.action(description="Test connection")
    def test_connection(self, request, queryset):
        for integration in queryset:
            result = services.integration_test(integration=integration, actor=request.user, request=request)
            level = messages.SUCCESS if result.ok else messages.ERROR
            self.message_user(request, f"{integration}: {'works (' + result.identity + ')' if result.ok else result.detail.get('error', 'failed')}", level)

    @admin.action(description="Discover fields now")
    def discover_fields(self, request, queryset):
        from common.errors import ApplicationError

        for integration in queryset:
            for data_source in integration.data_sources.all():
                try:
                    services.data_source_discover(data_source=data_source, actor=request.user, request=request)
                except ApplicationError as error:
                    self.message_user(request, f"{data_source}: {error.message}", messages.ERROR)
                else:
                    self.message_user(request, f"{data_source}: {len(data_source.discovered_fields)} fields", messages.SUCCESS)


class DataSourceAdminForm(forms.ModelForm):
    """The field mapping as one picker per Bastion field (choices: the fields discovery found); a name that was not
    discovered is refused, and without discovery the raw mapping is checked against the Bastion fields it may name."""

    PREFIX = "map__"

    class Meta:
        model = DataSource
        fields = [
            "organization",
            "integration",
            "entity_type",
            "is_enabled",
            "cursor",
            "schedule",
            "field_mapping",
            "last_synced_at",
            "is_stale",
            "stale_reason",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.pickers: list[str] = []
        if not self.instance.pk:
            return
        info = selectors.data_source_fields(data_source=self.instance)
        self.bastion_fields = [f["name"] for f in info["bastion_fields"]]
        if not info["fields"] or not self.bastion_fields:
            return
        choices = [("", "— not mapped —")] + [(f["name"], f"{f.get('label') or f['name']} ({f['name']})") for f in info["fields"]]
        mapping = self.instance.field_mapping or {}
        for name in self.bastion_fields:
            key = f"{self.PREFIX}{name}"
            self.fields[key] = forms.ChoiceField(
                label=f"{name.replace('_', ' ').capitalize()} ←", choices=choices, required=False, initial=mapping.get(name, "")
            )
            self.pickers.append(key)
        self.fields["field_mapping"].widget = forms.HiddenInput()
        self.fields["field_mapping"].required = False

    def clean(self):
        cleaned = super().clean()
        if self.pickers:
            cleaned["field_mapping"] = {key[len(self.PREFIX) :]: cleaned[key] for key in self.pickers if cleaned.get(key)}
            return cleaned
        mapping = cleaned.get("field_mapping")
        if mapping in (None, ""):
            return cleaned
        if not isinstance(mapping, dict) or any(not isinstance(k, str) or not isinstance(v, str) for k, v in mapping.items()):
            self.add_error("field_mapping", 'A mapping is an object of Bastion field → source field names, e.g. {"email": "mail"}.')
            return cleaned
        allowed = getattr(self, "bastion_fields", None)
        unknown = sorted(k for k in mapping if allowed and k not in allowed)
        if unknown:
            self.add_error("field_mapping", f"Not a Bastion field here: {', '.join(unknown)}. Allowed: {', '.join(allowed)}.")
        return cleaned


@admin.register(DataSource)
class DataSourceAdmin(admin.ModelAdmin):
    form = DataSourceAdminForm
    list_display = ["__str__", "organization", "entity_type", "is_enabled", "discovered_at", "last_synced_at", "is_stale"]
    list_filter = ["is_enabled", "is_stale", "entity_type", "integration__connector_key"]
    search_fields = ["entity_type", "integration__display_name"]
    readonly_fields = ["discovered_fields", "discovered_at"]

    def get_fields(self, request, obj=None):
        fields = [*DataSourceAdminForm._meta.fields, *self.readonly_fields]
        pickers = DataSourceAdminForm(instance=obj).pickers if obj else []
        at = fields.index("field_mapping")
        fields[at:at] = pickers  # the pickers sit where the raw mapping was
        return fields

    def get_form(self, request, obj=None, change=False, **kwargs):
        # The pickers are added by the form itself; the model form is built from the model's fields only.
        kwargs["fields"] = [f for f in flatten_fieldsets(self.get_fieldsets(request, obj)) if not f.startswith(DataSourceAdminForm.PREFIX)]
        return super().get_form(request, obj, change, **kwargs)

    def save_model(self, request, obj, form, change):
        """Through the service: the same discovered-field check and audit entry as the API and the wizard."""
        mapping = form.cleaned_data.get("field_mapping")
        if change and mapping is not None:
            try:
                services.data_source_update(data_source=obj, field_mapping=mapping or {}, actor=request.user, request=request)
            except ApplicationError as error:
                messages.error(request, error.message)
            return
        super().save_model(request, obj, form, change)


@admin.register(IntegrationCredential)
class IntegrationCredentialAdmin(admin.ModelAdmin):
    list_display = ["integration", "organization", "credential_type", "expires_at", "refreshed_at", "updated_at"]
    list_filter = ["credential_type"]
    search_fields = ["integration__display_name"]
    fields = ["integration", "organization", "credential_type", "scopes", "expires_at", "refreshed_at", "created_at", "updated_at"]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(IntegrationCall)
class IntegrationCallAdmin(admin.ModelAdmin):
    """The vendor call log: method, path, status, latency; never bodies or secrets."""

    list_display = ["created_at", "integration", "method", "path", "status", "latency_ms", "is_ok", "error", "vendor_code", "attempt"]
    list_filter = ["is_ok", "method", "integration__connector_key"]
    search_fields = ["path", "integration__display_name", "vendor_code"]
    readonly_fields = [f.name for f in IntegrationCall._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


from integrations.custom import admin as custom_admin  # noqa: E402, F401 - registers the custom connector admin
