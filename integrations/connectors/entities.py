"""The Bastion entity shapes connectors produce from `to_bastion` (and fetch_object): one TypedDict per BastionType.

Every key is optional for the type checker (vendors know different things); the sync engine reads the keys named here and
nothing else, so a connector that produces a person writes `BastionPerson(...)` and a misspelt key is a type error.
"""

from __future__ import annotations

from typing import Any, TypedDict


class BastionPerson(TypedDict, total=False):
    external_id: str
    email: str
    name: str
    given_name: str
    family_name: str
    title: str
    department: str
    phone: str
    username: str
    manager_external_id: str
    manager_email: str
    groups: list[str]
    is_active: bool
    timezone: str
    location: str
    employee_id: str
    extra: dict[str, Any]


class BastionGroup(TypedDict, total=False):
    external_id: str
    name: str
    description: str
    members: list[str]
    email: str


class BastionChannel(TypedDict, total=False):
    external_id: str
    name: str
    topic: str
    purpose: str
    is_private: bool
    is_archived: bool
    member_count: int
    url: str


class BastionTask(TypedDict, total=False):
    external_id: str
    key: str
    title: str
    status: str
    status_category: str  # todo | in_progress | done (Jira's statusCategory; others map onto it)
    is_done: bool
    assignee_email: str
    owner: str
    due_date: str
    project: str
    url: str
    updated: str | None


class BastionEvent(TypedDict, total=False):
    external_id: str
    title: str
    summary: str
    start: str
    end: str
    status: str
    organizer_email: str
    attendees: list[dict[str, Any]]
    location: str
    conference_url: str
    url: str


class BastionIncident(TypedDict, total=False):
    external_id: str
    title: str
    name: str
    status: str
    urgency: str
    impact: str
    service: str
    assignee_email: str
    created_at: str
    resolved_at: str
    url: str


class BastionDeal(TypedDict, total=False):
    external_id: str
    # The CRM connectors' deal shape, as the shipped M&A forms map it (dealName, value, closeDate, stakeholders).
    dealName: str
    value: float | None
    closeDate: str
    stakeholders: list[dict[str, Any]]
    name: str
    amount: float | None
    currency: str
    stage: str
    close_date: str
    owner_email: str
    account: str
    url: str


class BastionProject(TypedDict, total=False):
    external_id: str
    key: str
    name: str
    url: str
