"""Reads of the people directory for the other apps: listing, typeahead, lookups by id, email or source identity."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet

from accounts.models import Organization
from people.models import Person, PersonIdentity

TYPEAHEAD_MAX_LIMIT = 50
# Typeahead sorts at most this many matches: a short query matching thousands of people shows 20 of the first matches found
# (alphabetically), and the person types more to narrow. Sorting every match of "so" in 100,000 people would not fit 100 ms.
TYPEAHEAD_CANDIDATES = 1000


def person_list(*, organization: Organization, query: str = "", include_inactive: bool = True) -> QuerySet[Person]:
    queryset = Person.objects.filter(organization=organization).select_related("manager")
    if not include_inactive:
        queryset = queryset.filter(is_active=True)
    for term in query.lower().split():
        queryset = queryset.filter(search_text__contains=term)
    return queryset.prefetch_related(Prefetch("identities", queryset=PersonIdentity.objects.select_related("integration").order_by("source")))


def person_search(*, organization: Organization, query: str, limit: int = 20) -> list[Person]:
    """Typeahead over merged people: every word must match name, email, title or department; active people first."""
    queryset = person_list(organization=organization, query=query)
    return list(queryset.order_by("-is_active", "display_name")[: max(1, min(limit, 100))])


def person_get(*, organization: Organization, person_id: Any) -> Person | None:
    return person_list(organization=organization).filter(pk=person_id).first()


def person_typeahead(
    *, organization: Organization, query: str, limit: int = 20, connector_keys: list[str] | None = None, excluded_integration_ids: Collection[Any] = ()
) -> QuerySet[Person]:
    """Active people whose search text contains every word of the query (trigram-indexed on PostgreSQL).

    People known only through excluded integrations (allowed_roles) are left out; people known from elsewhere stay.
    """
    people = Person.objects.filter(organization=organization, is_active=True)
    if excluded_integration_ids:
        identities = PersonIdentity.objects.filter(person=OuterRef("pk"))
        people = people.filter(Exists(identities.exclude(integration_id__in=list(excluded_integration_ids))) | ~Exists(identities))
    for term in query.strip().lower().split()[:5]:
        people = people.filter(search_text__contains=term)
    if connector_keys:
        from_sources = PersonIdentity.objects.filter(person=OuterRef("pk")).filter(
            Q(source__in=connector_keys) | Q(integration__connector_key__in=connector_keys)
        )
        people = people.filter(Exists(from_sources.exclude(integration_id__in=list(excluded_integration_ids))))
    candidates = people.order_by().values("id")[:TYPEAHEAD_CANDIDATES]
    return (
        Person.objects.filter(pk__in=candidates)
        .only("id", "display_name", "email", "title", "department")
        .order_by("display_name", "id")[: max(1, min(limit, TYPEAHEAD_MAX_LIMIT))]
    )


def people_by_ids_or_emails(*, organization: Organization, ids: Iterable[Any], emails: Iterable[str]) -> QuerySet[Person]:
    """The organization's people with one of these ids (valid UUIDs) or one of these emails (lower-cased)."""
    return Person.objects.filter(organization=organization).filter(Q(pk__in=list(ids)) | Q(email__in=list(emails)))


def people_by_email(*, organization: Organization, emails: Iterable[str]) -> dict[str, Person]:
    """Email (lower-cased) → the organization's person with it."""
    return {p.email: p for p in Person.objects.filter(organization=organization, email__in=list(emails))}


def person_identity_exists(*, organization: Organization, integration_id: Any, external_id: str) -> bool:
    """Whether a source identity with this id exists in the organization (a client cannot invent an origin)."""
    return PersonIdentity.objects.filter(organization=organization, integration_id=integration_id, external_id=external_id).exists()


def person_identities_from_sources(
    *, organization: Organization, connector_keys: Collection[str], excluded_integration_ids: Collection[Any] = ()
) -> QuerySet[PersonIdentity]:
    """Active people's identities in these sources (by source key or by integration), with their person, by name."""
    return (
        PersonIdentity.objects.filter(organization=organization, person__is_active=True)
        .filter(Q(source__in=connector_keys) | Q(integration__connector_key__in=connector_keys))
        .exclude(integration_id__in=excluded_integration_ids)
        .select_related("person", "integration")
        .order_by("person__display_name")
    )
