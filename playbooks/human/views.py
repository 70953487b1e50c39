"""Pages for human steps: the confirmation page behind an e-mailed link (GET shows, only POST decides) and war-room decisions."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from accounts.models import Role
from accounts.tenancy import organization_page
from common.errors import ApplicationError, error_body
from playbooks.human.chat import chat_interaction
from playbooks.human.models import HumanStep
from playbooks.human.notify import TokenProblem, token_participant
from playbooks.human.services import human_step_decide


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def approval_link_page(request: HttpRequest, token: str) -> HttpResponse:
    """GET renders the step and a form; a link preview, a mail scanner or a chat unfurl fetching it changes nothing."""
    try:
        participant = token_participant(token)
    except TokenProblem as problem:
        return render(request, "playbooks/approval_confirm.html", {"problem": problem}, status=problem.status)
    step = participant.human_step
    context = {"participant": participant, "step": step, "step_playbook": step.playbook.name}
    if request.method in ("GET", "HEAD"):
        return render(request, "playbooks/approval_confirm.html", context)
    if request.user.is_authenticated and request.user.pk != participant.user_id:
        problem = TokenProblem("link_not_yours", f"This link was sent to {participant.user.get_username()}; you are signed in as someone else.")
        return render(request, "playbooks/approval_confirm.html", {"problem": problem}, status=403)
    try:
        step = human_step_decide(
            human_step=step,
            user=participant.user,
            decision=request.POST.get("decision", ""),
            comment=request.POST.get("comment", ""),
            via="email",
            token_participant=participant,
            request=request,
        )
    except ApplicationError as error:
        problem = TokenProblem(error.code, error.message, error.status_code)
        return render(request, "playbooks/approval_confirm.html", {"problem": problem}, status=error.status_code)
    participant.refresh_from_db()
    run = step.run or step.playbook.runs.order_by("-created_at").first()
    war_room = f"/playbooks/{step.playbook_id}/war-room/?run={run.pk}" if run else ""
    return render(request, "playbooks/approval_confirm.html", {**context, "step": step, "participant": participant, "done": True, "war_room": war_room})


@organization_page(Role.VIEWER)
@require_POST
def human_step_decide_page(request: HttpRequest, human_step_id) -> HttpResponse:
    """The war room's Approve / Reject / Mark done buttons (the signed-in person; their role is re-checked)."""
    human = HumanStep.objects.filter(organization=request.organization, pk=human_step_id).first()
    if human is None:
        raise Http404("No such step.")
    try:
        human_step_decide(
            human_step=human, user=request.user, decision=request.POST.get("decision", ""), comment=request.POST.get("comment", ""), request=request
        )
        messages.success(request, "Your decision is recorded.")
    except ApplicationError as error:
        messages.error(request, error.message)
    if human.run_id:
        return redirect(f"/playbooks/{human.playbook_id}/war-room/?run={human.run_id}")
    return redirect("playbooks:detail", playbook_id=human.playbook_id)


@csrf_exempt
def chat_interactions(request: HttpRequest, vendor: str, integration_id: str) -> HttpResponse:
    """POST /api/<connector key>/interactions/<integration id>: a chat tool's signed button press (its interactivity URL)."""
    if request.method != "POST":
        return JsonResponse(error_body("method_not_allowed", "Button presses arrive with POST."), status=405)
    status, body = chat_interaction(integration_id=integration_id, vendor=vendor, headers=dict(request.headers.items()), body=request.read(256 * 1024))
    return JsonResponse(body, status=status)
