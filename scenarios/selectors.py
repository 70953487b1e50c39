"""Reads for scenario data models and scenarios, always scoped by organization for scenarios."""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.models import Organization
from common.errors import ApplicationError
from scenarios.models import Scenario, ScenarioDataModel


def data_model_latest(*, scenario_type: str) -> ScenarioDataModel:
    """The latest published version of a scenario type (what new scenarios use)."""
    data_model = ScenarioDataModel.objects.filter(scenario_type=scenario_type, is_published=True).order_by("-version").first()
    if data_model is None:
        known = ", ".join(data_model_types()) or "none"
        raise ApplicationError(f"There is no published scenario type '{scenario_type}' (known: {known}).", code="unknown_scenario_type", status_code=404)
    return data_model


def data_model_types() -> list[str]:
    return list(ScenarioDataModel.objects.filter(is_published=True).order_by("scenario_type").values_list("scenario_type", flat=True).distinct())


def data_model_latest_all() -> list[ScenarioDataModel]:
    """The latest published version of every scenario type."""
    return [data_model_latest(scenario_type=t) for t in data_model_types()]


def scenario_list(*, organization: Organization) -> QuerySet[Scenario]:
    return Scenario.objects.filter(organization=organization).select_related("data_model", "created_by").order_by("-created_at")


def scenario_last_of_type(*, organization: Organization, scenario_type: str, exclude_id=None) -> Scenario | None:
    """The organization's most recent scenario of a type: the source of "last crisis team" pre-fill."""
    queryset = Scenario.objects.filter(organization=organization, scenario_type=scenario_type)
    if exclude_id is not None:
        queryset = queryset.exclude(pk=exclude_id)
    return queryset.order_by("-created_at").first()
