"""What a human step's configuration may say, checked on the template, and who it names (by role or by name)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model

from accounts.models import ROLE_RANK, Membership, Organization, Role
from playbooks.human.models import HumanStepKind

HUMAN_CONNECTOR = "bastion"
KIND_BY_ACTION = {
    "approval": HumanStepKind.APPROVAL,
    "human_task": HumanStepKind.TASK,
    "wait": HumanStepKind.WAIT,
    "status_update": HumanStepKind.STATUS_UPDATE,
}
# What happens when an approval is rejected or a deadline passes: take the step's `<key>:rejected` / `<key>:timed_out`
# branch (plain dependents are skipped), cancel the run, or continue as if approved (the default path).
BRANCHES = ("branch", "cancel", "continue")
DEFAULT_NAMED_ROLE = Role.EDITOR


def is_human_connector(connector_key: str) -> bool:
    return connector_key == HUMAN_CONNECTOR


def _is_number_or_placeholder(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return value > 0
    return isinstance(value, str) and "{{" in value


def _people_problem(specs: Any, what: str) -> str:
    if not isinstance(specs, list) or not specs:
        return f"{what} must be a non-empty list of {{'role': …}} or {{'user': …}}."
    for spec in specs:
        if not isinstance(spec, dict) or not (spec.get("role") or spec.get("user")):
            return f"Each entry of {what} names a role ({{'role': 'admin'}}) or a person ({{'user': 'ava@…'}})."
        if spec.get("role") and spec["role"] not in Role.values:
            return f"Unknown role '{spec['role']}' in {what} (one of {', '.join(Role.values)})."
    return ""


def template_problem(action: str, config: Any) -> str:
    """Why a human step's template cannot run ("" when it can). Every wait needs a deadline and a path after it."""
    if action not in KIND_BY_ACTION:
        return f"Bastion has no human step '{action}' (one of {', '.join(KIND_BY_ACTION)})."
    if not isinstance(config, dict):
        return "A human step's payload must be a JSON object."
    for name in ("on_reject", "on_timeout"):
        if config.get(name, "branch") not in BRANCHES:
            return f"{name} must be one of {', '.join(BRANCHES)}."
    if action in ("approval", "status_update"):
        problem = _people_problem(config.get("approvers"), "approvers")
        if problem:
            return problem
        if config.get("escalate_to") is not None and (problem := _people_problem(config.get("escalate_to"), "escalate_to")):
            return problem
        required = config.get("required", 1)
        if not isinstance(required, int) or required < 1:
            return "required (how many approvals, N of M) must be a whole number of at least 1."
        if not _is_number_or_placeholder(config.get("timeout_minutes")):
            return "timeout_minutes is required: every wait has a deadline and a path after it (on_timeout)."
    if action == "status_update":
        send = config.get("send")
        if not isinstance(send, dict) or not send.get("connector_key") or not send.get("action"):
            return "send must name the channel: {'connector_key': 'email', 'action': 'send_email', 'payload': {...}}."
    if action == "human_task":
        problem = _people_problem([config.get("assignee")] if config.get("assignee") else [], "assignee")
        if problem:
            return problem
        if not _is_number_or_placeholder(config.get("due_minutes")):
            return "due_minutes is required: a task has a due time (overdue tasks are raised and reminded)."
    if action == "wait":
        if not (config.get("until") or config.get("minutes") or config.get("condition")):
            return "A wait needs until (a time), minutes (a duration) or condition (JSON Logic over the run)."
        if config.get("condition") and not _is_number_or_placeholder(config.get("timeout_minutes")):
            return "A wait on a condition needs timeout_minutes: every wait has a deadline and a path after it."
        if config.get("condition"):
            from scenarios.logic import LogicError, check_expression

            try:
                check_expression(config["condition"])
            except LogicError as error:
                return f"condition: {error}"
    return ""


def minutes(value: Any) -> float | None:
    """A rendered minutes value (number or numeric string); None when absent or unreadable."""
    if isinstance(value, bool) or value in (None, ""):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def after(now: datetime, value: Any) -> datetime | None:
    amount = minutes(value)
    return now + timedelta(minutes=amount) if amount is not None else None


@dataclass
class Person:
    user: Any
    required_role: str
    via: str


def membership_of(user: Any, organization: Organization) -> Membership | None:
    return Membership.objects.filter(user=user, organization=organization).first()


def is_eligible(user: Any, organization: Organization, required_role: str) -> bool:
    """Re-checked at every decision: still active, still a member, still at least the role they were asked for."""
    if user is None or not user.is_active:
        return False
    membership = membership_of(user, organization)
    return membership is not None and ROLE_RANK[Role(membership.role)] >= ROLE_RANK[Role(required_role)]


def resolve_people(organization: Organization, specs: list[dict[str, Any]] | Any) -> list[Person]:
    """The organization's members each entry names: everyone with at least a role, or one person by username or e-mail."""
    found: dict[Any, Person] = {}
    for spec in specs if isinstance(specs, list) else []:
        if not isinstance(spec, dict):
            continue
        if spec.get("role") in Role.values:
            role = spec["role"]
            wanted = [r for r, rank in ROLE_RANK.items() if rank >= ROLE_RANK[Role(role)]]
            memberships = Membership.objects.filter(organization=organization, role__in=wanted, user__is_active=True).select_related("user")
            for membership in memberships.order_by("created_at"):
                found.setdefault(membership.user_id, Person(membership.user, role, f"role:{role}"))
        elif spec.get("user"):
            name = str(spec["user"]).strip()
            user = (
                get_user_model().objects.filter(memberships__organization=organization, is_active=True).filter(username__iexact=name).first()
                or get_user_model().objects.filter(memberships__organization=organization, is_active=True, email__iexact=name).first()
            )
            if user is not None:
                role = spec.get("min_role") if spec.get("min_role") in Role.values else DEFAULT_NAMED_ROLE
                found.setdefault(user.pk, Person(user, role, f"user:{name}"))
    return list(found.values())
