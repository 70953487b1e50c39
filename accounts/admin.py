"""Admin for organizations, memberships and the read-only audit trail."""

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError

from accounts.models import AuditEvent, Invitation, Membership, Organization, Role

LAST_OWNER = "An organization needs at least one owner: make someone else owner first."


class MembershipAdminForm(forms.ModelForm):
    """Staff cannot demote the last owner here either (the API refuses it in accounts.services)."""

    class Meta:
        model = Membership
        fields = ["user", "organization", "role"]

    def clean(self):
        data = super().clean()
        instance = self.instance
        if instance.pk and instance.role == Role.OWNER and data.get("role") != Role.OWNER:
            if not Membership.objects.filter(organization_id=instance.organization_id, role=Role.OWNER).exclude(pk=instance.pk).exists():
                raise ValidationError(LAST_OWNER)
        return data


class MembershipInlineFormSet(forms.BaseInlineFormSet):
    """The organization's member list as a whole must keep an owner (changes and deletions together)."""

    def clean(self):
        super().clean()
        if any(form.errors for form in self.forms):
            return
        owners = 0
        for form in self.forms:
            if not getattr(form, "cleaned_data", None) or form.cleaned_data.get("DELETE"):
                continue
            owners += form.cleaned_data.get("role") == Role.OWNER
        if self.instance.pk and Membership.objects.filter(organization=self.instance, role=Role.OWNER).exists() and owners == 0:
            raise ValidationError(LAST_OWNER)


class MembershipInline(admin.TabularInline):
    model = Membership
    formset = MembershipInlineFormSet
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "created_at"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    form = MembershipAdminForm
    list_display = ["user", "organization", "role", "created_at"]
    list_filter = ["role", "organization"]
    search_fields = ["user__username", "user__email", "organization__name"]
    autocomplete_fields = ["user", "organization"]

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.role == Role.OWNER:
            if not Membership.objects.filter(organization_id=obj.organization_id, role=Role.OWNER).exclude(pk=obj.pk).exists():
                return False
        return super().has_delete_permission(request, obj)

    def delete_queryset(self, request, queryset):
        # The bulk action too: refuse when it would take the last owner of any organization.
        for organization_id in queryset.filter(role=Role.OWNER).values_list("organization_id", flat=True).distinct():
            remaining = Membership.objects.filter(organization_id=organization_id, role=Role.OWNER).exclude(pk__in=queryset.values("pk"))
            if not remaining.exists():
                self.message_user(request, LAST_OWNER, level="error")
                return
        super().delete_queryset(request, queryset)


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    """Invitations are made by owners through the product (the token is e-mailed, only its digest is stored): read-only here."""

    list_display = ["email", "organization", "role", "invited_by", "expires_at", "accepted_at", "revoked_at"]
    list_filter = ["role", "organization"]
    search_fields = ["email", "organization__name"]
    readonly_fields = ["token_digest"]

    def has_add_permission(self, request):
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "action", "actor_label", "organization", "target_type", "target_id", "ip_address"]
    list_filter = ["action", "organization"]
    search_fields = ["action", "actor_label", "target_id"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
