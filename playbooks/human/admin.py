"""Admin for human steps: what waits on whom, who decided what (links are never shown, only their state)."""

from django.contrib import admin

from playbooks.human.models import HumanStep, Participant


class ParticipantInline(admin.TabularInline):
    model = Participant
    extra = 0
    can_delete = False
    fields = ["user", "role", "required_role", "via", "escalation_level", "notified_at", "decision", "decided_at", "decided_via", "comment", "token_used_at"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(HumanStep)
class HumanStepAdmin(admin.ModelAdmin):
    list_display = ["title", "kind", "state", "outcome", "playbook", "due_at", "stalled_at", "created_at"]
    list_filter = ["kind", "state", "outcome"]
    search_fields = ["title", "playbook__name"]
    readonly_fields = [f.name for f in HumanStep._meta.fields]
    inlines = [ParticipantInline]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(Participant)
class ParticipantAdmin(admin.ModelAdmin):
    """Who was asked to act on which step and what they decided (the link itself is never shown)."""

    list_display = ["human_step", "user", "role", "decision", "decided_via", "decided_at"]
    list_filter = ["role", "decision", "decided_via"]
    search_fields = ["user__username", "human_step__title"]
    exclude = ["token_hash"]
    readonly_fields = [f.name for f in Participant._meta.fields if f.name != "token_hash"]

    def has_add_permission(self, request) -> bool:
        return False
