"""Dependent steps start the moment their input exists: Slack's channel is reported as soon as conversations.create
answers, so the invitations, the briefing and the e-mails go out while the channel's topic is still being set."""

from __future__ import annotations

from integrations.connectors.kit.progress import output_listener, output_ready
from integrations.connectors.results import ActionResult
from playbooks.contract import OUTPUT_EARLY_KEY
from playbooks.models import RunStatus, StepStatus
from playbooks.services import playbook_activate, playbook_create
from tests.playbooks.conftest import actions_target, vendor_requests
from tests.playbooks.test_roles_two_stacks import _jira, _slack_and_google


def test_invitations_go_out_before_the_channel_step_sets_its_topic(organization, make_scenario, crisis_template, sandbox, on_commit, owner):
    for integration in [*_slack_and_google(organization, sandbox), _jira(organization, sandbox)]:
        assert integration.status == "connected"
    email = actions_target(organization, sandbox)
    playbook = playbook_create(
        organization=organization, scenario=make_scenario(), template=crisis_template, integration_bindings={"email": str(email.pk)}, actor=owner
    )
    run, _ = on_commit(playbook_activate, playbook=playbook, actor=owner)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error_summary

    channel = run.step_runs.get(step_key="create_channel")
    assert channel.status == StepStatus.SUCCEEDED and channel.result.get(OUTPUT_EARLY_KEY)
    # The steps that need the channel were queued while its step was still making its last call (the topic); here the
    # test's transaction holds their messages until the end, a worker receives them at once.
    for key in ("invite_stakeholders", "post_briefing", "notify_stakeholders"):
        items = list(run.step_runs.filter(step_key=key))
        assert items and {i.status for i in items} == {StepStatus.SUCCEEDED}, key
        assert all(i.queued_at < channel.finished_at for i in items), key
    invites = run.step_runs.filter(step_key="invite_stakeholders")
    assert invites.count() == 20 and set(invites.values_list("payload__channel", flat=True)) == {channel.external_id}

    methods = [r["path"].rsplit("/", 1)[-1] for r in vendor_requests(sandbox, "slack") if r["method"] == "POST"]
    assert methods.count("conversations.invite") == 1  # 20 per-person items, one bulk invitation
    assert methods.count("conversations.setTopic") == 1


def test_output_ready_outside_the_engine_does_nothing_and_a_failing_listener_never_fails_the_action():
    result = ActionResult(external_id="C1")
    output_ready(result)  # no engine listening: nothing happens

    seen: list[str] = []

    def listener(reported: ActionResult) -> None:
        seen.append(reported.external_id)
        raise RuntimeError("the engine could not record it")

    with output_listener(listener):
        output_ready(result)
    assert seen == ["C1"]
    output_ready(ActionResult(external_id="C2"))  # the listener is gone once the block ends
    assert seen == ["C1"]
