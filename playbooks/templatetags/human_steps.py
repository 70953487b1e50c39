"""{% human_steps_for run as steps %}: the approvals, tasks and waits of a run, for templates/playbooks/_human_steps.html."""

from __future__ import annotations

from typing import Any

from django import template

from playbooks.human.models import HumanStep
from playbooks.human.selectors import human_attention, human_step_view

register = template.Library()


@register.simple_tag(takes_context=True)
def human_steps_for(context: dict[str, Any], run: Any) -> dict[str, Any]:
    if run is None:
        return {"open": [], "done": [], "attention": []}
    request = context.get("request")
    user = getattr(request, "user", None)
    views = [human_step_view(h, user=user) for h in HumanStep.objects.filter(run=run).select_related("step_run", "organization").order_by("created_at")]
    return {"open": [v for v in views if v["state"] == "open"], "done": [v for v in views if v["state"] != "open"], "attention": human_attention(run)}
