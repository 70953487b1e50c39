"""Server-rendered playbook pages: the list, a playbook with its preview and Activate button, and the war room."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.models import Role
from accounts.tenancy import organization_page
from common.errors import ApplicationError
from common.validators import is_uuid
from integrations.models import Integration
from playbooks import selectors, services
from playbooks.apis import preview_payload
from playbooks.models import PlaybookRun, PlaybookTemplate
from playbooks.war_room import war_room_display


def _playbook_or_404(request: HttpRequest, playbook_id):
    playbook = selectors.playbook_get(organization=request.organization, playbook_id=playbook_id)
    if playbook is None:
        raise Http404("No such playbook.")
    return playbook


def _run_or_404(request: HttpRequest, run_id) -> PlaybookRun:
    run = selectors.playbook_run_list(organization=request.organization).filter(pk=run_id).first()
    if run is None:
        raise Http404("No such run.")
    return run


@organization_page(Role.VIEWER)
def playbook_list_page(request: HttpRequest) -> HttpResponse:
    playbooks = list(selectors.playbook_list(organization=request.organization)[:200])
    rows = [(p, selectors.playbook_latest_run(playbook=p)) for p in playbooks]
    finished = [run for _, run in rows if run and run.duration_ms is not None and run.status == "succeeded"]
    saved_minutes = sum(selectors.time_saved(run)["saved_minutes"] or 0 for run in finished)
    return render(
        request,
        "playbooks/list.html",
        {
            "organization": request.organization,
            "rows": rows,
            "scenarios": selectors.scenario_list(organization=request.organization)[:200],
            "templates": PlaybookTemplate.objects.filter(is_active=True),
            "can_edit": request.membership.has_role(Role.EDITOR),
            "saved_hours": round(saved_minutes / 60, 1),
            "finished_count": len(finished),
        },
    )


@organization_page(Role.EDITOR)
@require_POST
def playbook_create_page(request: HttpRequest) -> HttpResponse:
    scenario = selectors.scenario_list(organization=request.organization).filter(pk=request.POST.get("scenario_id") or None).first()
    if scenario is None:
        messages.error(request, "Choose a scenario.")
        return redirect("playbooks:list")
    template = PlaybookTemplate.objects.filter(pk=request.POST.get("template_id")).first() if request.POST.get("template_id") else None
    try:
        playbook = services.playbook_create(organization=request.organization, scenario=scenario, template=template, actor=request.user, request=request)
    except ApplicationError as error:
        messages.error(request, error.message)
        return redirect("playbooks:list")
    return redirect("playbooks:detail", playbook_id=playbook.pk)


@organization_page(Role.VIEWER)
def playbook_detail_page(request: HttpRequest, playbook_id) -> HttpResponse:
    playbook = _playbook_or_404(request, playbook_id)
    if request.method == "POST":
        if not request.membership.has_role(Role.EDITOR):
            raise PermissionDenied("Only editors change which integrations a playbook uses.")
        bindings = {key[len("binding_") :]: value for key, value in request.POST.items() if key.startswith("binding_") and value}
        try:
            services.playbook_update(playbook=playbook, integration_bindings=bindings, actor=request.user, request=request)
            messages.success(request, "Integrations saved.")
        except ApplicationError as error:
            messages.error(request, error.message)
        return redirect("playbooks:detail", playbook_id=playbook.pk)
    preview = preview_payload(playbook)
    connector_keys = sorted({step["connector_key"] for step in preview["steps"]})
    names = {step["key"]: step["name"] for step in preview["steps"]}
    connector_names = {step["connector_key"]: step.get("connector_name") or step["connector_key"] for step in preview["steps"]}
    for step in preview["steps"]:
        step["after"] = [names.get(key, key.replace("_", " ")) for key in step.get("depends_on") or []]
    latest_run = selectors.playbook_latest_run(playbook=playbook)
    run_counts = dict(latest_run.step_runs.filter(undo_of__isnull=True).values_list("status").annotate(n=Count("id"))) if latest_run else {}
    integrations = list(Integration.objects.filter(organization=request.organization).order_by("display_name"))
    return render(
        request,
        "playbooks/detail.html",
        {
            "organization": request.organization,
            "playbook": playbook,
            "preview": preview,
            "latest_run": latest_run,
            # One live run per playbook: while it is open (running, done or partial) activating returns that same run.
            "run_is_open": bool(latest_run and latest_run.status in services.OPEN_RUN_STATUSES),
            "run_done": run_counts.get("succeeded", 0),
            "run_total": sum(n for status, n in run_counts.items() if status not in ("skipped", "cancelled")),
            "can_edit": request.membership.has_role(Role.EDITOR),
            "bindings": [(key, connector_names.get(key, key), (playbook.integration_bindings or {}).get(key, "")) for key in connector_keys],
            "integrations": integrations,
        },
    )


@organization_page(Role.EDITOR)
@require_POST
def playbook_activate_page(request: HttpRequest, playbook_id) -> HttpResponse:
    playbook = _playbook_or_404(request, playbook_id)
    try:
        run, created = services.playbook_activate(playbook=playbook, actor=request.user, request=request)
    except ApplicationError as error:
        messages.error(request, error.message)
        return redirect("playbooks:detail", playbook_id=playbook.pk)
    if not created:
        messages.info(request, "This playbook is already active: showing its run.")
    return redirect(f"/playbooks/{playbook.pk}/war-room/?run={run.pk}")


def _war_room_context(request: HttpRequest, playbook_id) -> dict:
    playbook = _playbook_or_404(request, playbook_id)
    run = None
    if request.GET.get("run"):
        run = playbook.runs.filter(pk=request.GET["run"]).first() if is_uuid(request.GET["run"]) else None
    run = run or selectors.playbook_latest_run(playbook=playbook)
    view = selectors.playbook_run_view(run=run) if run else None
    can_edit = request.membership.has_role(Role.EDITOR)
    room = war_room_display(run=run, view=view, can_edit=can_edit) if run else None
    return {"organization": request.organization, "playbook": playbook, "run": run, "view": view, "room": room, "can_edit": can_edit}


@organization_page(Role.VIEWER)
def war_room_page(request: HttpRequest, playbook_id) -> HttpResponse:
    return render(request, "playbooks/war_room.html", _war_room_context(request, playbook_id))


@organization_page(Role.VIEWER)
def war_room_live(request: HttpRequest, playbook_id) -> HttpResponse:
    """The live part of the war room, server-rendered, for the page's script to swap in while the run moves."""
    context = _war_room_context(request, playbook_id)
    if context["view"] is None:
        raise Http404("This playbook has no run yet.")
    response = render(request, "playbooks/_war_room_live.html", context)
    response["Cache-Control"] = "no-store"
    response["X-Run-Live"] = "1" if context["view"]["is_live"] else "0"
    return response


@organization_page(Role.EDITOR)
@require_POST
def run_retry_page(request: HttpRequest, run_id) -> HttpResponse:
    run = _run_or_404(request, run_id)
    try:
        retried = services.playbook_run_retry_failed(run=run, actor=request.user, request=request)
        messages.success(request, f"Retrying {len(retried)} failed action(s).")
    except ApplicationError as error:
        messages.error(request, error.message)
    return redirect(f"/playbooks/{run.playbook_id}/war-room/?run={run.pk}")


@organization_page(Role.EDITOR)
@require_POST
def run_resume_page(request: HttpRequest, run_id) -> HttpResponse:
    run = _run_or_404(request, run_id)
    resent = services.playbook_run_resume(run=run, actor=request.user)
    if resent:
        messages.success(request, f"Resumed {len(resent)} stalled action{'s' if len(resent) != 1 else ''}; nothing already done is repeated.")
    else:
        messages.info(request, "Nothing was stalled: the run is moving (or has ended).")
    return redirect(f"/playbooks/{run.playbook_id}/war-room/?run={run.pk}")


@organization_page(Role.EDITOR)
@require_POST
def run_cancel_page(request: HttpRequest, run_id) -> HttpResponse:
    run = _run_or_404(request, run_id)
    undo = request.POST.get("undo") == "1"
    try:
        outcome = services.playbook_run_cancel(run=run, undo=undo, actor=request.user, request=request)
        if undo:
            kept = sum(1 for item in outcome.undo if not item.is_undoable)
            note = f" {kept} item(s) cannot be undone and stay (e-mails cannot be unsent)." if kept else ""
            messages.warning(request, f"Run cancelled. Undoing {len(outcome.undo_queued)} object(s) in your tools; each result shows below.{note}")
        else:
            created = ", ".join(f"{s.label} ({s.external_id})" for s in outcome.already_created[:10]) or "nothing"
            messages.warning(request, f"Run cancelled. Already created (left in place): {created}.")
    except ApplicationError as error:
        messages.error(request, error.message)
    return redirect(f"/playbooks/{run.playbook_id}/war-room/?run={run.pk}")
