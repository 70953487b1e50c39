"""Admin of the people directory: people with their source identities inline, merge settings, erasure suppressions (read-only)."""

from django.contrib import admin

from people.models import PeopleSettings, Person, PersonIdentity, SuppressedIdentity


class PersonIdentityInline(admin.TabularInline):
    model = PersonIdentity
    extra = 0
    fields = ["source", "integration", "entity_type", "external_id", "updated_at"]
    readonly_fields = fields


@admin.register(Person)
class PersonAdmin(admin.ModelAdmin):
    list_display = ["display_name", "email", "title", "department", "organization", "is_active"]
    list_filter = ["organization", "is_active", "department"]
    search_fields = ["display_name", "email", "search_text"]
    readonly_fields = ["provenance", "search_text"]
    inlines = [PersonIdentityInline]


@admin.register(PeopleSettings)
class PeopleSettingsAdmin(admin.ModelAdmin):
    list_display = ["organization", "source_priority"]


@admin.register(SuppressedIdentity)
class SuppressedIdentityAdmin(admin.ModelAdmin):
    """Erased data subjects kept out of syncs: read-only digests (lifting goes through the audited data-rights API)."""

    list_display = ["created_at", "organization", "kind", "digest"]
    list_filter = ["kind", "organization"]
    fields = ["created_at", "organization", "kind", "digest"]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
