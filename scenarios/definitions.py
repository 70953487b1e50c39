"""The scenario definitions every install ships (loaded by migration 0004): Crisis Management, Product Launch, M&A.

Sources follow the seed note. Systems without a public API (Crayon/Klue, Datasite/DealRoom, Carta, LinkedIn) stay visible as
manual, link or import fields rather than being hidden; a field whose source is not connected still takes typed values.
"""

from __future__ import annotations

from typing import Any

from scenarios.spec import STAKEHOLDER_ROLES

DIRECTORY_SOURCE: dict[str, Any] = {
    "connector": "ldap",
    "entity": "users",
    "mapping": "$.email",
    "options_label": "$.name",
    "label": "Active Directory",
    "alternatives": [{"connector": "okta", "entity": "users"}, {"connector": "entra", "entity": "users"}],
}
SLACK_CHANNELS: dict[str, Any] = {"connector": "slack", "entity": "channels", "mapping": "$.external_id", "options_label": "$.name", "label": "Slack"}
JIRA_ISSUES: dict[str, Any] = {"connector": "jira", "entity": "issues", "mapping": "$.key", "options_label": "$.summary", "label": "Jira"}
# The work plan lives in Jira or Asana (the tasks role): Asana's tasks have a title where Jira's issues have a summary.
WORK_ITEMS: dict[str, Any] = {**JIRA_ISSUES, "alternatives": [{"connector": "asana", "entity": "tasks", "mapping": "$.id", "options_label": "$.title"}]}
ROLE_OPTIONS = [{"value": v, "label": label} for v, label in STAKEHOLDER_ROLES]


def _stakeholders(label: str = "Stakeholders", help_text: str = "") -> dict[str, Any]:
    return {
        "key": "stakeholders",
        "label": label,
        "type": "stakeholder_list",
        "required": True,
        "section": "Team",
        "help_text": help_text or "People with a role on this scenario. Import them from your directory or a CSV file (name,email,role).",
        "source": DIRECTORY_SOURCE,
        "csv_import": True,
        "prefill": "last_scenario",
        "options": ROLE_OPTIONS,
        "validation": {"min_items": 1},
    }


def _jira_key(default: str) -> dict[str, Any]:
    return {
        "key": "jira_project_key",
        "label": "Jira project key",
        "type": "text",
        "required": True,
        "section": "Execution",
        "default": default,
        "help_text": "Tasks are created in this Jira project when the playbook is activated.",
        "prefill": "last_scenario",
        "validation": {
            "regex": "^[A-Z][A-Z0-9]{1,9}$",
            "regex_message": "Jira project key must be 2–10 capital letters or digits, starting with a letter (e.g. OPS).",
        },
    }


def _channels(help_text: str) -> dict[str, Any]:
    return {
        "key": "communication_channels",
        "label": "Communication channels",
        "type": "channel",
        "multiple": True,
        "section": "Communication",
        "help_text": help_text,
        "source": SLACK_CHANNELS,
        "prefill": "last_scenario",
    }


# Incident history: PagerDuty's incidents, or ServiceNow's (number and short description).
INCIDENT_SOURCE: dict[str, Any] = {
    "connector": "pagerduty",
    "entity": "incidents",
    "mapping": "$.external_id",
    "options_label": "$.title",
    "label": "PagerDuty",
    "alternatives": [{"connector": "servicenow", "entity": "incidents"}],  # the same paths: external_id and title
}
SECURITY_BREACH = {"==": [{"var": "crisis_type"}, "security_breach"]}
# A template file in a connected documents tool: activation copies it into the incident's folder, shared with the team.
LEGAL_TEMPLATE_FIELDS: list[dict[str, Any]] = [
    {
        "key": "legal_template_file",
        "label": "Legal template to copy",
        "type": "document",
        "section": "Context",
        "help_text": "A template in a connected documents tool (SharePoint, OneDrive): activation copies it into the incident's folder "
        "and shares it with the crisis team.",
    }
]
LEGAL_ON_TEAM = {
    "some": [
        {"var": "stakeholders"},
        {"or": [{"==": [{"var": "role"}, "legal"]}, {"in": [{"var": "department"}, ["Legal", "legal", "LEGAL", "Legal & Compliance"]]}]},
    ]
}

CRISIS_MANAGEMENT: dict[str, Any] = {
    "scenario_type": "crisis_management",
    "name": "Crisis Management",
    "description": "Assemble the crisis team, open the war room and coordinate communication for an incident.",
    "field_definitions": [
        {"key": "title", "label": "Title", "type": "text", "required": True, "section": "Overview", "placeholder": "Customer data exposure, EU region"},
        {
            "key": "crisis_type",
            "label": "Crisis type",
            "type": "select",
            "required": True,
            "section": "Overview",
            "options": [
                {"value": "security_breach", "label": "Security breach"},
                {"value": "service_outage", "label": "Service outage"},
                {"value": "product_recall", "label": "Product recall"},
                {"value": "legal_regulatory", "label": "Legal or regulatory"},
                {"value": "reputational", "label": "Reputational"},
                {"value": "natural_disaster", "label": "Natural disaster"},
                {"value": "other", "label": "Other"},
            ],
        },
        {
            "key": "severity",
            "label": "Severity",
            "type": "select",
            "required": True,
            "section": "Overview",
            "default": "sev2",
            "options": [
                {"value": "sev1", "label": "SEV1 — critical"},
                {"value": "sev2", "label": "SEV2 — major"},
                {"value": "sev3", "label": "SEV3 — minor"},
                {"value": "sev4", "label": "SEV4 — low"},
            ],
        },
        {
            "key": "summary",
            "label": "Summary",
            "type": "long_text",
            "required": True,
            "section": "Overview",
            "help_text": "What happened, who is affected, what is known.",
        },
        {
            "key": "ciso",
            "label": "CISO",
            "type": "person",
            "required": True,
            "section": "Security breach",
            "help_text": "The security executive who owns the breach response.",
            "source": DIRECTORY_SOURCE,
            "visible_if": SECURITY_BREACH,
        },
        {
            "key": "breach_scope",
            "label": "Breach scope",
            "type": "long_text",
            "required": True,
            "section": "Security breach",
            "help_text": "Systems and data involved, how many records, which regions.",
            "visible_if": SECURITY_BREACH,
        },
        {
            "key": "records_exposed",
            "label": "Records exposed (estimate)",
            "type": "number",
            "section": "Security breach",
            "validation": {"min": 0},
            "visible_if": SECURITY_BREACH,
        },
        {
            "key": "regulators_notified",
            "label": "Regulators notified",
            "type": "boolean",
            "section": "Security breach",
            "help_text": "GDPR: within 72 hours of becoming aware of a personal data breach.",
            "visible_if": SECURITY_BREACH,
        },
        {
            "key": "incident_commander",
            "label": "Incident commander",
            "type": "person",
            "required": True,
            "section": "Team",
            "source": DIRECTORY_SOURCE,
            "prefill": "last_scenario",
        },
        _stakeholders("Crisis team", "Everyone on the crisis team with their role. Legal must be on it."),
        {
            "key": "media_contacts",
            "label": "Media contacts",
            "type": "stakeholder_list",
            "section": "Communication",
            "help_text": "Journalists and agencies to brief, from the CRM or a CSV file.",
            "source": {"connector": "hubspot", "entity": "contacts", "mapping": "$.email", "options_label": "$.name", "label": "HubSpot"},
            "csv_import": True,
            "options": ROLE_OPTIONS,
        },
        _channels("Slack channels for the response; a war-room channel is created on activation."),
        {"key": "war_room_meeting_at", "label": "War-room meeting", "type": "datetime", "section": "Communication"},
        {
            "key": "incident_history",
            "label": "Related incidents",
            "type": "multi_select",
            "section": "Context",
            "help_text": "Earlier or ongoing incidents linked to this crisis, from PagerDuty or ServiceNow.",
            "source": INCIDENT_SOURCE,
        },
        {
            "key": "legal_templates",
            "label": "Legal templates",
            "type": "document_link",
            "section": "Context",
            "help_text": "Link to the holding statement / notification templates (SharePoint or any document store).",
        },
        *LEGAL_TEMPLATE_FIELDS,
        _jira_key("OPS"),
    ],
    "validation_rules": [
        {
            "key": "legal_on_crisis_team",
            "message": "Legal must be on the crisis team: add someone from Legal (role Legal) to the crisis team.",
            "rule": LEGAL_ON_TEAM,
            "fields": ["stakeholders"],
        }
    ],
}

# Launch inputs from the product tools: features activation links to the launch (Productboard) or moves on (Aha!), the
# customer conversations it tags (Intercom), the charts it watches (Amplitude, read only) and the brand assets it shares (Brandfolder).
LAUNCH_PRODUCT_FIELDS: list[dict[str, Any]] = [
    {
        "key": "productboard_features",
        "label": "Productboard features",
        "type": "multi_select",
        "section": "Product",
        "help_text": "Features this launch ships: activation links them to the launch in Productboard.",
        "source": {"connector": "productboard", "entity": "features", "mapping": "$.id", "options_label": "$.name", "label": "Productboard"},
    },
    {
        "key": "aha_features",
        "label": "Aha! features",
        "type": "multi_select",
        "section": "Product",
        "help_text": "Features this launch ships: activation moves them to Ready to ship in Aha! and tracks them until shipped.",
        "source": {"connector": "aha", "entity": "features", "mapping": "$.reference_num", "options_label": "$.label", "label": "Aha!"},
    },
    {
        "key": "customer_feedback",
        "label": "Customer feedback",
        "type": "multi_select",
        "section": "Product",
        "help_text": "Intercom conversations behind this launch: activation tags them with the launch.",
        "source": {"connector": "intercom", "entity": "conversations", "mapping": "$.id", "options_label": "$.title", "label": "Intercom"},
    },
    {
        "key": "launch_metrics",
        "label": "Launch metrics",
        "type": "multi_select",
        "section": "Product",
        "help_text": "Amplitude charts the launch team watches (read only).",
        "source": {"connector": "amplitude", "entity": "charts", "mapping": "$.id", "options_label": "$.name", "label": "Amplitude"},
    },
    {
        "key": "asset_collection",
        "label": "Brand asset collection",
        "type": "select",
        "section": "Product",
        "help_text": "The Brandfolder collection for this launch: activation shares it with the launch team.",
        "source": {"connector": "brandfolder", "entity": "collections", "mapping": "$.id", "options_label": "$.name", "label": "Brandfolder"},
    },
]

PRODUCT_LAUNCH: dict[str, Any] = {
    "scenario_type": "product_launch",
    "name": "Product Launch",
    "description": "Coordinate a launch: timeline, team, targets, assets and announcement.",
    "field_definitions": [
        {"key": "title", "label": "Title", "type": "text", "required": True, "section": "Overview", "placeholder": "Bastion 2.0 general availability"},
        {"key": "launch_date", "label": "Launch date", "type": "date", "required": True, "section": "Overview"},
        {
            "key": "launch_tier",
            "label": "Launch tier",
            "type": "select",
            "required": True,
            "section": "Overview",
            "default": "tier2",
            "options": [
                {"value": "tier1", "label": "Tier 1 — major launch"},
                {"value": "tier2", "label": "Tier 2"},
                {"value": "tier3", "label": "Tier 3 — quiet release"},
            ],
        },
        {
            "key": "press_release_date",
            "label": "Press release date",
            "type": "date",
            "required": True,
            "section": "Overview",
            "visible_if": {"==": [{"var": "launch_tier"}, "tier1"]},
        },
        {"key": "summary", "label": "Summary", "type": "long_text", "required": True, "section": "Overview"},
        {
            "key": "product_specs",
            "label": "Product specs",
            "type": "document_link",
            "section": "Product",
            "help_text": "Link to the spec; features in Productboard or Aha! are picked below.",
        },
        *LAUNCH_PRODUCT_FIELDS,
        {
            "key": "sales_target",
            "label": "Sales target",
            "type": "money",
            "section": "Product",
            "help_text": "First-quarter bookings target (Salesforce forecast).",
            "validation": {"min": 0},
        },
        {
            "key": "target_opportunities",
            "label": "Target opportunities",
            "type": "multi_select",
            "section": "Product",
            "source": {"connector": "salesforce", "entity": "opportunities", "mapping": "$.external_id", "options_label": "$.dealName", "label": "Salesforce"},
        },
        {
            "key": "marketing_assets",
            "label": "Marketing assets",
            "type": "document_link",
            "section": "Product",
            "help_text": "Link to the assets anywhere; a Brandfolder collection is picked above.",
        },
        {
            "key": "launch_timeline",
            "label": "Launch timeline",
            "type": "multi_select",
            "section": "Execution",
            "help_text": "Jira issues or Asana tasks that make up the launch plan.",
            "source": WORK_ITEMS,
        },
        {
            "key": "competitive_intel",
            "label": "Competitive intel",
            "type": "long_text",
            "section": "Product",
            "help_text": "Crayon and Klue have no public API: paste the battlecard summary or import their export.",
        },
        _stakeholders("Launch team"),
        _channels("Slack channels for launch coordination."),
        _jira_key("LAUNCH"),
    ],
    "validation_rules": [
        {
            "key": "press_before_launch",
            "message": "The press release date must be on or before the launch date.",
            "rule": {
                "or": [{"!": [{"var": "press_release_date"}]}, {"!": [{"var": "launch_date"}]}, {"<=": [{"var": "press_release_date"}, {"var": "launch_date"}]}]
            },
            "fields": ["press_release_date", "launch_date"],
        }
    ],
}

# The deal's Excel model fills the deal value, close date and synergy targets (POST /api/scenarios/<id>/document-import).
WORKBOOK_FIELDS: list[dict[str, Any]] = [
    {
        "key": "financial_model",
        "label": "Financial model workbook",
        "type": "document",
        "section": "Deal",
        "help_text": "The deal's model (Excel in OneDrive/SharePoint, or Google Sheets): it fills the deal value, close date and synergy targets.",
        "imports": {"deal_value": "DealValue", "close_date": "CloseDate", "synergy_targets": "Synergies"},
    },
    {"key": "close_date", "label": "Expected close date", "type": "date", "section": "Deal"},
    {
        "key": "synergy_targets",
        "label": "Synergy targets",
        "type": "long_text",
        "section": "Deal",
        "help_text": "One line per target (the model's Synergies table).",
    },
]

# The deal's signature packet: a DocuSign template sent to the signers on activation (the signatures role).
SIGNATURE_FIELDS: list[dict[str, Any]] = [
    {
        "key": "signature_template",
        "label": "Signature template",
        "type": "select",
        "section": "Deal",
        "help_text": "A DocuSign template (NDA, letter of intent): activation sends it to the signers below.",
        "source": {"connector": "docusign", "entity": "templates", "mapping": "$.id", "options_label": "$.name", "label": "DocuSign"},
    },
    {
        "key": "signers",
        "label": "Signers",
        "type": "stakeholder_list",
        "section": "Deal",
        "help_text": "Who signs, in the template's order of roles. Import them from your directory or a CSV file (name,email).",
        "source": DIRECTORY_SOURCE,
        "csv_import": True,
        "options": ROLE_OPTIONS,
        "visible_if": {"!!": [{"var": "signature_template"}]},
    },
]

MERGERS_ACQUISITIONS: dict[str, Any] = {
    "scenario_type": "mergers_acquisitions",
    "name": "M&A",
    "description": "Run a merger or acquisition: the deal, its sponsor, the deal team and integration work.",
    "field_definitions": [
        {"key": "title", "label": "Title", "type": "text", "required": True, "section": "Deal", "placeholder": "Project Falcon"},
        {
            "key": "deal",
            "label": "Deal",
            "type": "select",
            "required": True,
            "section": "Deal",
            "help_text": "The opportunity in the CRM.",
            "source": {
                "connector": "salesforce",
                "entity": "opportunities",
                "mapping": "$.external_id",
                "options_label": "$.dealName",
                "label": "Salesforce",
                "alternatives": [{"connector": "hubspot", "entity": "deals"}],
            },
        },
        {"key": "deal_value", "label": "Deal value", "type": "money", "required": True, "section": "Deal", "validation": {"min": 0}},
        *WORKBOOK_FIELDS,
        *SIGNATURE_FIELDS,
        {
            "key": "board_sponsor",
            "label": "Board sponsor",
            "type": "person",
            "section": "Deal",
            "help_text": "Required for deals over $10M.",
            "source": DIRECTORY_SOURCE,
        },
        {"key": "summary", "label": "Summary", "type": "long_text", "required": True, "section": "Deal"},
        {
            "key": "financial_models",
            "label": "Financial models",
            "type": "document_link",
            "section": "Diligence",
            "help_text": "Link to other models or to the data room (Datasite, DealRoom: no public API, import their index export).",
        },
        {
            "key": "legal_requirements",
            "label": "Legal requirements",
            "type": "long_text",
            "section": "Diligence",
            "help_text": "Regulatory approvals, filings, conditions.",
        },
        {
            "key": "integration_tasks",
            "label": "Integration tasks",
            "type": "multi_select",
            "section": "Integration",
            "help_text": "Jira issues or Asana tasks for post-merger integration.",
            "source": WORK_ITEMS,
        },
        _stakeholders("Stakeholder directory", "The deal team and everyone who must be informed (org chart or CSV)."),
        _jira_key("MA"),
    ],
    "validation_rules": [
        {
            "key": "board_sponsor_for_large_deals",
            "message": "A deal over $10M needs a board sponsor.",
            "rule": {"or": [{"!": [{"var": "deal_value.amount"}]}, {"<=": [{"var": "deal_value.amount"}, 10000000]}, {"!!": [{"var": "board_sponsor"}]}]},
            "fields": ["board_sponsor"],
        }
    ],
}

SHIPPED_DEFINITIONS: list[dict[str, Any]] = [CRISIS_MANAGEMENT, PRODUCT_LAUNCH, MERGERS_ACQUISITIONS]
