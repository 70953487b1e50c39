"""The core promise on the README's own demo command: embedded PostgreSQL and Redis, its worker and beat, the sandbox.

In Debian's Chromium: connect Jira by OAuth, import stakeholders from the directory and channels from Slack, create and
activate the crisis playbook, see every step done in the war room, move a Jira issue in the sandbox and see it flow
back, cancel with undo and see every created object undone, re-activate and count the e-mails in the SMTP sink. Then
a worker is killed in the middle of an activation and the run finishes by itself, nothing created twice.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime, timedelta

import psutil
import pytest
import requests
from playwright.sync_api import expect

from tests.conftest import wait_for
from tests.e2e.demo_process import PASSWORD, DemoProcess

pytestmark = [pytest.mark.browser, pytest.mark.worker]

FINISHED = ("succeeded", "partial", "failed", "cancelled")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    process = DemoProcess(tmp_path_factory.mktemp("demo") / "data").start()
    yield process
    process.stop()


def _run(api: requests.Session, demo: DemoProcess, run_id: str) -> dict:
    answer = api.get(f"{demo.url}/api/playbook-runs/{run_id}/", timeout=10)
    assert answer.status_code == 200, answer.text[:500]
    return answer.json()


def _finished(api: requests.Session, demo: DemoProcess, run_id: str, timeout: float = 120) -> dict:
    return wait_for(lambda: (r := _run(api, demo, run_id)) and r["status"] in FINISHED and r, timeout=timeout, message=f"run {run_id} to finish")


def _problems(run: dict) -> list:
    return [
        (s["key"], s["status"], [i.get("last_error", "")[:300] for i in s.get("items", []) if i.get("last_error")][:2])
        for s in run["steps"]
        if s["status"] != "succeeded"
    ]


def _mails(demo: DemoProcess) -> list[dict]:
    return requests.get(f"{demo.sandbox}/_control/created", params={"vendor": "email"}, timeout=5).json()


def _created(demo: DemoProcess) -> list[dict]:
    return [c for c in requests.get(f"{demo.sandbox}/_control/created", timeout=5).json() if c["vendor"] != "email"]


def _activate_in_page(page, demo: DemoProcess, playbook_id: str) -> None:
    page.goto(f"{demo.url}/playbooks/{playbook_id}/")
    button = page.get_by_role("button", name=re.compile("^Activate"))
    expect(button, "the playbook page offers no enabled Activate: " + page.locator("main").inner_text()[:3000]).to_be_enabled()
    button.click()
    page.wait_for_url(re.compile(r".*/war-room/.*"))


def test_whole_story_on_the_demo_configuration(demo, browser_page):
    page = browser_page
    assert demo.ready_seconds is not None and demo.ready_seconds < 180, demo.ready_seconds
    # The demo serves pages with DEBUG off: an unknown page is a plain 404, never Django's debug page.
    missing = requests.get(f"{demo.url}/no-such-page/", timeout=10)
    assert missing.status_code == 404 and "Traceback" not in missing.text and "URLconf" not in missing.text

    page.goto(f"{demo.url}/accounts/login/")
    page.fill("#id_login", "admin")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{demo.url}/")

    # Connect Jira through the real OAuth redirect (sandbox consent page → Allow), then register its webhook.
    page.goto(f"{demo.url}/integrations/")
    page.locator("li.connector[data-connector=jira]").get_by_role("link", name=re.compile("Connect")).click()
    page.get_by_label(re.compile(r"\(OAuth\)")).check()
    page.click("#connect-continue")
    page.wait_for_url(re.compile(re.escape(f"{demo.sandbox}/jira/") + r".*authorize\?.*state="))
    page.click("#allow")
    page.wait_for_url(re.compile(re.escape(demo.url) + r"/integrations/[0-9a-f-]+/setup/"))
    page.click("#setup-continue")
    page.wait_for_url(re.compile(r".*/map/$"))
    page.click("#map-continue")
    page.wait_for_url(re.compile(r".*/finish/$"))
    page.click("#test-connection")
    expect(page.locator("#test-result")).to_contain_text("Connection works")
    page.click("#wizard-done")
    expect(page.locator("#integration-status")).to_have_text("Connected")
    page.click("#register-webhook")
    expect(page.locator(".messages")).to_contain_text("now sends its changes to")

    # A crisis scenario: stakeholders imported from the directory, channels from Slack.
    page.goto(f"{demo.url}/scenarios/new/crisis_management/")
    expect(page.locator("#scenario-form")).to_have_attribute("data-enhanced", "1")
    page.fill("#id_title", "Payments outage")
    page.fill("#id_summary", "Card payments fail for EU customers.")
    page.select_option("#id_severity", "sev1")
    page.select_option("#id_crisis_type", "service_outage")
    page.fill("#id_incident_commander", "amara")
    page.click("#field-incident_commander .typeahead-option:has-text('Amara Nwosu')")
    stakeholders = page.locator("#field-stakeholders")
    stakeholders.locator("button.import-source[data-connector=okta]").click()
    expect(stakeholders.locator(".import-choices input[type=checkbox]")).to_have_count(20)
    for index in range(20):
        stakeholders.locator(".import-choices input[type=checkbox]").nth(index).check()
    stakeholders.locator("button.import-selected").click()
    expect(stakeholders.locator(".tool-status")).to_contain_text("Imported 20")
    channels = page.locator("#field-communication_channels")
    channels.locator("button.import-source[data-connector=slack]").click()
    choices = channels.locator(".import-choices input[type=checkbox]")
    expect(choices.first).to_be_visible()
    for index in range(choices.count()):
        wanted = choices.nth(index).get_attribute("data-label") in ("incident-response", "exec-team")
        choices.nth(index).set_checked(wanted)
    channels.locator("button.import-selected").click()
    expect(channels.locator(".tool-status")).to_contain_text("Imported 2")
    page.fill("#id_war_room_meeting_at", (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT09:00"))
    page.click("#save-scenario")
    page.wait_for_url(re.compile(r".*/scenarios/[0-9a-f-]+/edit/$"))

    # The playbook, then Activate: the page answers at once and the workers do the work.
    api = demo.api()
    scenario = next(s for s in api.get(f"{demo.url}/api/scenarios/", timeout=10).json()["results"] if s["title"] == "Payments outage")
    page.goto(f"{demo.url}/playbooks/")
    page.select_option("#scenario_id", scenario["id"])
    page.get_by_role("button", name="Create playbook").click()
    page.wait_for_url(re.compile(r".*/playbooks/[0-9a-f-]+/$"))
    playbook_id = page.url.rstrip("/").split("/")[-1]
    _activate_in_page(page, demo, playbook_id)
    run_id = api.get(f"{demo.url}/api/playbooks/{playbook_id}/runs/", timeout=10).json()
    run_id = (run_id["results"] if isinstance(run_id, dict) else run_id)[0]["id"]
    run = _finished(api, demo, run_id)
    assert run["status"] == "succeeded", _problems(run)
    page.reload()
    expect(page.locator("body")).not_to_contain_text("Traceback")
    # The war room a person watches says every action is done, in its own words.
    progress = page.locator("#overall-progress").inner_text()
    done, total = (int(n) for n in re.match(r"(\d+) of (\d+) actions done", progress).groups())
    assert done == total and total >= 40, progress
    issues = [t for t in run["tasks"] if t["kind"] == "jira_issue"]
    assert len(issues) == 17
    assert sum(1 for t in run["tasks"] if t["kind"] == "channel") == 1
    assert sum(1 for t in run["tasks"] if t["kind"] == "meeting") == 1
    first_mails = _mails(demo)
    assert first_mails, "the activation sent no e-mail"
    recipients = Counter(m["summary"] for m in first_mails)
    assert max(recipients.values()) == 1, recipients.most_common(3)

    # A Jira issue moves to Done in the sandbox; its signed webhook flows back through the worker to the war room.
    issue = sorted(issues, key=lambda t: t["external_key"] or t["external_id"])[0]
    moved = requests.post(
        f"{demo.sandbox}/jira/_sandbox/transition", json={"issue_key": issue["external_key"] or issue["external_id"], "status": "Done"}, timeout=5
    )
    assert moved.json()["webhooks"] == 1
    wait_for(
        lambda: next(t for t in _run(api, demo, run_id)["tasks"] if t["id"] == issue["id"])["status"].lower() == "done",
        timeout=60,
        message="the Jira transition to reach the war room",
    )
    page.reload()
    expect(page.locator(f"[data-task='{issue['id']}']")).to_contain_text(re.compile("done", re.IGNORECASE))

    # Cancel with undo, from the war room: every object the run created is undone in the sandbox.
    page.locator("summary:has(#undo-open), #undo-open:not(summary *)").first.click()
    page.click("#confirm-undo")
    undone = wait_for(
        lambda: (r := _run(api, demo, run_id))["undo"]["items"] and not r["undo"]["is_running"] and r,
        timeout=120,
        message="the undo to finish",
    )
    statuses = Counter(item["status"] for item in undone["undo"]["items"])
    assert all(item["status"] == ("succeeded" if item["is_undoable"] else "not_undoable") for item in undone["undo"]["items"]), statuses
    assert statuses["succeeded"] >= 19, statuses  # 17 issues, the channel and the meeting at least
    assert _run(api, demo, run_id)["status"] == "cancelled"

    # Activate again: what exists is reused, and nobody gets an e-mail twice.
    _activate_in_page(page, demo, playbook_id)
    runs = api.get(f"{demo.url}/api/playbooks/{playbook_id}/runs/", timeout=10).json()
    second_id = (runs["results"] if isinstance(runs, dict) else runs)[0]["id"]
    assert second_id != run_id
    second = _finished(api, demo, second_id)
    assert second["status"] == "succeeded", _problems(second)
    after = _mails(demo)
    assert len(after) == len(first_mails), f"{len(after) - len(first_mails)} e-mails sent a second time"
    assert max(Counter(m["summary"] for m in after).values()) == 1


def test_killed_worker_mid_activation_finishes_by_itself(demo):
    api = demo.api()
    scenarios = api.get(f"{demo.url}/api/scenarios/", timeout=10).json()["results"]
    scenario = next(s for s in scenarios if s["title"] == "Payments outage")  # built in the browser by the story above
    created = api.post(f"{demo.url}/api/playbooks/", json={"scenario_id": scenario["id"], "name": "Fault drill"}, timeout=10)
    assert created.status_code == 201, created.text[:500]
    playbook_id = created.json()["id"]
    # Slow vendors keep the activation going long enough to kill the worker in the middle of it.
    for vendor in ("jira", "slack", "google_calendar", "pagerduty"):
        requests.put(f"{demo.sandbox}/_control/faults/{vendor}", json={"latency_ms": 400}, timeout=5).raise_for_status()
    before = Counter((c["vendor"], c["kind"], c["summary"]) for c in _created(demo))
    mails_before = len(_mails(demo))
    activated = api.post(f"{demo.url}/api/playbooks/{playbook_id}/activate/", timeout=30)
    assert activated.status_code == 202, activated.text[:500]
    run_id = activated.json()["id"]
    wait_for(
        lambda: sum(1 for s in _run(api, demo, run_id)["steps"] if s["status"] == "succeeded") >= 1,
        timeout=60,
        message="the activation to be under way",
    )
    pids = demo.worker_pids()
    assert pids
    for pid in pids:
        try:
            psutil.Process(pid).kill()
        except psutil.NoSuchProcess:
            pass
    for vendor in ("jira", "slack", "google_calendar", "pagerduty"):
        requests.put(f"{demo.sandbox}/_control/faults/{vendor}", json={"latency_ms": 0}, timeout=5).raise_for_status()
    # Nobody presses anything: the supervisor restarts the worker, beat's stalled-run check resumes the steps.
    run = _finished(api, demo, run_id, timeout=240)
    assert run["status"] == "succeeded", _problems(run)
    after = Counter((c["vendor"], c["kind"], c["summary"]) for c in _created(demo))
    twice = {key: n for key, n in (after - before).items() if n > 1}
    assert not twice, twice
    mails = _mails(demo)[mails_before:]
    assert max(Counter(m["summary"] for m in mails).values(), default=1) == 1
