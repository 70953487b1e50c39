"""Ship the Crisis Management, Product Launch and M&A playbook templates (ops staff edit them in the admin afterwards)."""

from django.db import migrations

CHANNEL_ID = "{{ steps.create_channel.external_id }}"
STAKEHOLDER_EMAILS = "{{ scenario.stakeholders | emails }}"
MEETING_START = "{{ scenario.war_room_meeting_at | default:playbook.next_slot }}"

CRISIS_TASKS = [
    ("confirm-scope", "Confirm incident scope and severity", "Establish what is affected, since when, and confirm the severity level.", "incident_commander"),
    ("assign-roles", "Assign incident roles", "Name the deputy, scribe, communications lead and technical lead.", "incident_commander"),
    ("contain", "Contain affected systems", "Isolate or disable the affected systems to stop further impact.", "ciso|incident_commander"),
    ("preserve-evidence", "Preserve logs and evidence", "Snapshot logs, disks and access records before they rotate.", "ciso|incident_commander"),
    ("customer-impact", "Assess customer impact", "Quantify affected customers, regions and contracts.", "incident_commander"),
    ("legal-review", "Legal and regulatory assessment", "Determine contractual and regulatory obligations and deadlines.", "incident_commander"),
    ("privacy-notice", "Data-protection notification assessment", "Decide whether regulators must be notified (GDPR: 72 hours).", "ciso|incident_commander"),
    ("internal-comms", "Draft internal communication", "Tell employees what happened and what to say (and not say).", "incident_commander"),
    ("customer-comms", "Draft customer communication", "Prepare the customer notice and the support macro.", "incident_commander"),
    ("press-statement", "Prepare press holding statement", "Agree a holding statement with Legal and Communications.", "incident_commander"),
    ("status-page", "Update the public status page", "Post and keep updating the status page.", "incident_commander"),
    ("exec-briefing", "Brief the executive team", "Brief executives on impact, actions and decisions needed.", "incident_commander"),
    ("third-parties", "Coordinate with vendors and third parties", "Engage affected vendors, insurers and partners.", "incident_commander"),
    ("remediation", "Track remediation actions", "List and own every remediation action to closure.", "incident_commander"),
    ("recovery", "Plan recovery and validation", "Restore service and validate integrity before reopening.", "incident_commander"),
    ("support-readiness", "Prepare the support team", "Brief support with the FAQ and escalation path.", "incident_commander"),
    ("post-incident-review", "Schedule the post-incident review", "Book the blameless review within five working days.", "incident_commander"),
]

LAUNCH_TASKS = [
    ("launch-plan", "Confirm launch plan and date", "Agree scope, date and go/no-go criteria."),
    ("release-readiness", "Release readiness check", "Confirm the build, feature flags and rollback plan."),
    ("docs", "Publish documentation", "Product docs, release notes and API changes."),
    ("pricing", "Confirm pricing and packaging", "Pricing pages, plans and billing configuration."),
    ("sales-enablement", "Sales enablement", "Pitch deck, battlecards and demo script."),
    ("support-enablement", "Support enablement", "FAQ, macros and escalation path."),
    ("marketing-campaign", "Marketing campaign", "Launch blog, emails and social posts."),
    ("press", "Press and analyst briefings", "Embargoed briefings and the press release."),
    ("legal-review", "Legal review", "Terms, privacy notice and claims review."),
    ("analytics", "Launch analytics", "Dashboards for adoption and conversion."),
    ("go-no-go", "Go/no-go meeting", "Final decision with every owner present."),
    ("retro", "Launch retrospective", "Review results two weeks after launch."),
]

MA_TASKS = [
    ("nda", "NDAs and clean-team setup", "Sign NDAs and define the clean team."),
    ("data-room", "Data room review", "Assign reviewers per data-room section."),
    ("financial-dd", "Financial due diligence", "Quality of earnings, working capital and debt."),
    ("legal-dd", "Legal due diligence", "Contracts, litigation, IP and change-of-control clauses."),
    ("tech-dd", "Technology due diligence", "Architecture, security posture and technical debt."),
    ("people-dd", "People due diligence", "Key people, retention and compensation."),
    ("valuation", "Valuation and model update", "Update the model with diligence findings."),
    ("regulatory", "Regulatory and antitrust filings", "Determine and prepare the required filings."),
    ("board-approval", "Board approval package", "Prepare the board memo and resolution."),
    ("comms-plan", "Announcement communication plan", "Employees, customers, investors and press."),
    ("integration-plan", "Day-one integration plan", "Systems, people and customer integration for day one."),
    ("closing-checklist", "Closing checklist", "Conditions precedent and signing logistics."),
]


def crisis_steps():
    return [
        {
            "key": "create_channel",
            "name": "Create the crisis Slack channel",
            "connector_key": "slack",
            "action": "create_channel",
            "payload_template": {
                "name": "crisis-{{ playbook.date }}-{{ scenario.title | slug }}",
                "is_private": False,
                "topic": "{{ scenario.severity | upper }} · {{ scenario.title }} · Incident commander: {{ scenario.incident_commander.name }}",
            },
            "task_kind": "slack_channel",
            "description": "creates Slack channel #{{ payload.name }}",
        },
        {
            "key": "invite_stakeholders",
            "name": "Invite the stakeholders",
            "connector_key": "slack",
            "action": "invite_users",
            "depends_on": ["create_channel"],
            "payload_template": {"channel": CHANNEL_ID, "emails": STAKEHOLDER_EMAILS},
            "description": "invites {{ payload.emails | count }} people to #{{ steps.create_channel.payload.name }}",
        },
        {
            "key": "post_briefing",
            "name": "Post the briefing in the channel",
            "connector_key": "slack",
            "action": "post_message",
            "depends_on": ["create_channel"],
            "payload_template": {
                "channel": CHANNEL_ID,
                "text": "*{{ scenario.severity | upper }}: {{ scenario.title }}*\nIncident commander: {{ scenario.incident_commander.name }}\n"
                "War room meeting: {{ scenario.war_room_meeting_at | default:playbook.next_slot }}\n\n{{ scenario.summary }}\n\nWar room: {{ playbook.url }}",
            },
            "description": "posts the briefing in #{{ steps.create_channel.payload.name }}",
        },
        {
            "key": "create_tasks",
            "name": "Create the crisis tasks in Jira",
            "connector_key": "jira",
            "action": "create_issue",
            "for_each": "items",
            "items": [{"key": k, "title": t, "description": d, "owner_field": o} for k, t, d, o in CRISIS_TASKS],
            "is_bulk": True,
            "payload_template": {
                "project_key": "{{ scenario.jira_project_key | default:'OPS' }}",
                "summary": "{{ item.title }}: {{ scenario.title }}",
                "description": "{{ item.description }}\n\nCrisis: {{ scenario.title }} ({{ scenario.severity | upper }})\nWar room: {{ playbook.url }}",
                "issue_type": "Task",
                "assignee_email": "{{ item.owner.email }}",
                "labels": ["bastion", "crisis"],
            },
            "task_kind": "jira_issue",
            "description": "creates {{ count }} Jira issues in project {{ payload.project_key }}",
        },
        {
            "key": "book_war_room",
            "name": "Book the war-room meeting",
            "connector_key": "google_calendar",
            "action": "create_event",
            "payload_template": {
                "calendar_id": "primary",
                "summary": "War room: {{ scenario.title }}",
                "description": "{{ scenario.summary }}\n\nWar room: {{ playbook.url }}",
                "start": MEETING_START,
                "end": "{{ scenario.war_room_meeting_at | default:playbook.next_slot | add_minutes:60 }}",
                "timezone": "UTC",
                "attendees": STAKEHOLDER_EMAILS,
                "conference": True,
                "reminders_minutes": [10],
            },
            "task_kind": "calendar_event",
            "description": "books a 60-minute meeting with {{ payload.attendees | count }} attendees",
        },
        {
            "key": "notify_stakeholders",
            "name": "Notify the stakeholders by e-mail",
            "connector_key": "email",
            "action": "send_email",
            "depends_on": ["create_channel"],
            "for_each": "scenario.stakeholders",
            "item_key": "email",
            "payload_template": {
                "to": ["{{ item.email }}"],
                "subject": "[{{ scenario.severity | upper }}] {{ scenario.title }}: you are on the crisis team",
                "body": "Hello {{ item.name }},\n\nYou are on the crisis team for \"{{ scenario.title }}\" as {{ item.role | default:'stakeholder' }}.\n"
                "Incident commander: {{ scenario.incident_commander.name }}\nSlack: #{{ steps.create_channel.payload.name }}\n"
                "War room meeting: {{ scenario.war_room_meeting_at | default:playbook.next_slot }}\nWar room: {{ playbook.url }}\n\n{{ scenario.summary }}",
            },
            "description": "sends {{ count }} email notifications",
        },
        {
            "key": "brief_ciso",
            "name": "Brief the CISO on the breach scope",
            "connector_key": "email",
            "action": "send_email",
            "condition": {"==": [{"var": "crisis_type"}, "security_breach"]},
            "payload_template": {
                "to": ["{{ scenario.ciso.email | default:scenario.incident_commander.email }}"],
                "subject": "Security breach: {{ scenario.title }}",
                "body": "Breach scope:\n{{ scenario.breach_scope }}\n\nWar room: {{ playbook.url }}",
            },
            "description": "e-mails the CISO the breach scope",
        },
        {
            "key": "page_on_call",
            "name": "Page on-call in PagerDuty",
            "connector_key": "pagerduty",
            "action": "trigger_incident",
            "is_required": False,
            "condition": {"in": [{"var": "severity"}, ["sev1", "sev2"]]},
            "payload_template": {
                "service_id": "{{ integration.config.service_id }}",
                "title": "{{ scenario.severity | upper }}: {{ scenario.title }}",
                "urgency": "high",
                "body": "{{ scenario.summary }}\n\nWar room: {{ playbook.url }}",
            },
            "task_kind": "incident",
            "description": "pages on-call with a high-urgency incident",
        },
        {
            "key": "status_page",
            "name": "Open a status page incident",
            "connector_key": "statuspage",
            "action": "create_incident",
            "is_required": False,
            "condition": {"==": [{"var": "severity"}, "sev1"]},
            "payload_template": {
                "name": "Service disruption",
                "status": "investigating",
                "body": "We are investigating an issue affecting some customers. The next update follows within 60 minutes.",
            },
            "task_kind": "status_incident",
            "description": "opens a public status page incident ('investigating')",
        },
    ]


def _common_steps(prefix: str, is_private: bool, tasks: list, owner_field: str, meeting: str, label: str) -> list:
    return [
        {
            "key": "create_channel",
            "name": f"Create the {label} Slack channel",
            "connector_key": "slack",
            "action": "create_channel",
            "payload_template": {"name": prefix + "{{ scenario.title | slug }}", "is_private": is_private, "topic": "{{ scenario.title }}"},
            "task_kind": "slack_channel",
            "description": "creates " + ("private " if is_private else "") + "Slack channel #{{ payload.name }}",
        },
        {
            "key": "invite_stakeholders",
            "name": "Invite the stakeholders",
            "connector_key": "slack",
            "action": "invite_users",
            "depends_on": ["create_channel"],
            "payload_template": {"channel": CHANNEL_ID, "emails": STAKEHOLDER_EMAILS},
            "description": "invites {{ payload.emails | count }} people to #{{ steps.create_channel.payload.name }}",
        },
        {
            "key": "create_tasks",
            "name": f"Create the {label} tasks in Jira",
            "connector_key": "jira",
            "action": "create_issue",
            "for_each": "items",
            "items": [{"key": k, "title": t, "description": d, "owner_field": owner_field} for k, t, d in tasks],
            "is_bulk": True,
            "payload_template": {
                "project_key": "{{ scenario.jira_project_key | default:'OPS' }}",
                "summary": "{{ item.title }}: {{ scenario.title }}",
                "description": "{{ item.description }}\n\n{{ scenario.summary }}\n\nBastion: {{ playbook.url }}",
                "issue_type": "Task",
                "assignee_email": "{{ item.owner.email }}",
                "labels": ["bastion", prefix.strip("-")],
            },
            "task_kind": "jira_issue",
            "description": "creates {{ count }} Jira issues in project {{ payload.project_key }}",
        },
        {
            "key": "book_meeting",
            "name": meeting,
            "connector_key": "google_calendar",
            "action": "create_event",
            "payload_template": {
                "calendar_id": "primary",
                "summary": meeting + ": {{ scenario.title }}",
                "description": "{{ scenario.summary }}\n\nBastion: {{ playbook.url }}",
                "start": "{{ playbook.next_slot }}",
                "end": "{{ playbook.next_slot | add_minutes:60 }}",
                "timezone": "UTC",
                "attendees": STAKEHOLDER_EMAILS,
                "conference": True,
            },
            "task_kind": "calendar_event",
            "description": "books a 60-minute meeting with {{ payload.attendees | count }} attendees",
        },
        {
            "key": "notify_stakeholders",
            "name": "Notify the stakeholders by e-mail",
            "connector_key": "email",
            "action": "send_email",
            "depends_on": ["create_channel"],
            "for_each": "scenario.stakeholders",
            "item_key": "email",
            "payload_template": {
                "to": ["{{ item.email }}"],
                "subject": "{{ scenario.title }}: you are on the " + label + " team",
                "body": "Hello {{ item.name }},\n\nYou are on the " + label + " team for \"{{ scenario.title }}\" as {{ item.role | default:'stakeholder' }}.\n"
                "Slack: #{{ steps.create_channel.payload.name }}\nBastion: {{ playbook.url }}\n\n{{ scenario.summary }}",
            },
            "description": "sends {{ count }} email notifications",
        },
    ]


def launch_steps():
    return _common_steps("launch-", False, LAUNCH_TASKS, "", "Launch kickoff", "launch")


def ma_steps():
    steps = _common_steps("deal-", True, MA_TASKS, "board_sponsor", "Deal team kickoff", "deal")
    steps.append(
        {
            "key": "crm_note",
            "name": "Note the playbook on the CRM deal",
            "connector_key": "hubspot",
            "action": "create_note",
            "is_required": False,
            "payload_template": {"deal_id": "{{ scenario.deal.external_id }}", "body": "Bastion activated the M&A playbook: {{ playbook.url }}"},
            "description": "adds a note to the deal in HubSpot",
        }
    )
    return steps


TEMPLATES = [
    (
        "crisis_management",
        "Crisis response",
        "The seed's crisis playbook: war-room channel and stakeholders, 17 tasks in Jira, the war-room meeting, notifications.",
        crisis_steps,
    ),
    ("product_launch", "Product launch", "Launch channel, launch tasks in Jira, kickoff meeting and team notifications.", launch_steps),
    ("mergers_acquisitions", "M&A deal team", "Private deal channel, due-diligence tasks in Jira, deal-team kickoff and notifications.", ma_steps),
]


def ship(apps, schema_editor):
    PlaybookTemplate = apps.get_model("playbooks", "PlaybookTemplate")
    PlaybookStepTemplate = apps.get_model("playbooks", "PlaybookStepTemplate")
    for scenario_type, name, description, steps in TEMPLATES:
        template, created = PlaybookTemplate.objects.get_or_create(
            scenario_type=scenario_type, name=name, defaults={"description": description, "manual_baseline_minutes": 120}
        )
        if not created:
            continue  # ops staff may have edited it; never overwrite their changes
        for position, step in enumerate(steps()):
            PlaybookStepTemplate.objects.create(template=template, position=position * 10, **step)


def unship(apps, schema_editor):
    PlaybookTemplate = apps.get_model("playbooks", "PlaybookTemplate")
    PlaybookTemplate.objects.filter(name__in=[name for _, name, _, _ in TEMPLATES], playbooks__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [("playbooks", "0001_initial")]

    operations = [migrations.RunPython(ship, unship)]
