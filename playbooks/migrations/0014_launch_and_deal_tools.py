"""The shipped launch and M&A templates use the product note's remaining systems where a company has them.

- The task list names the tasks role (@tasks): Jira or Asana, whichever is connected (an old {"jira": id} binding keeps
  working), with the role's payload (title, notes, assignee e-mail, due date) plus Jira's project key and labels.
- M&A sends the deal's signature template to its signers through the signatures role (DocuSign) when the scenario names one.
- Product launch links the launch to its Productboard features, moves its Aha! features on, tags the Intercom
  conversations behind it and shares the Brandfolder collection with the team, each only when the scenario names them.
Every new step is optional: a company without the tool, or a scenario that leaves the field empty, skips it.
"""

from django.db import migrations, models

SHIPPED = {"product_launch": "Product launch", "mergers_acquisitions": "M&A deal team"}
LABELS = {"product_launch": ["bastion", "launch"], "mergers_acquisitions": ["bastion", "deal"]}
DUE = {"product_launch": "{{ scenario.launch_date }}", "mergers_acquisitions": "{{ scenario.close_date }}"}


def task_payload(scenario_type: str) -> dict:
    return {
        "title": "{{ item.title }}: {{ scenario.title }}",
        "notes": "{{ item.description }}\n\n{{ scenario.summary }}\n\nBastion: {{ playbook.url }}",
        "assignee": "{{ item.owner.email }}",
        "due_on": DUE[scenario_type],
        "project_key": "{{ scenario.jira_project_key | default:'OPS' }}",
        "labels": LABELS[scenario_type],
    }


def issue_payload(scenario_type: str) -> dict:
    return {
        "labels": LABELS[scenario_type],
        "summary": "{{ item.title }}: {{ scenario.title }}",
        "issue_type": "Task",
        "description": "{{ item.description }}\n\n{{ scenario.summary }}\n\nBastion: {{ playbook.url }}",
        "project_key": "{{ scenario.jira_project_key | default:'OPS' }}",
        "assignee_email": "{{ item.owner.email }}",
    }


NEW_STEPS = {
    "mergers_acquisitions": [
        {
            "position": 45,
            "key": "send_for_signature",
            "name": "Send the signature packet",
            "connector_key": "@signatures",
            "action": "send_envelope",
            "is_required": False,
            "condition": {"!!": [{"var": "signature_template"}]},
            "payload_template": {
                "template_id": "{{ scenario.signature_template }}",
                "subject": "{{ scenario.title }}: please sign",
                "message": "Sent by Bastion for the deal team of {{ scenario.title }}: {{ playbook.url }}",
                "signers": "{{ scenario.signers | people }}",
            },
            "description": "sends the signature template to {{ payload.signers | count }} signers",
        },
    ],
    "product_launch": [
        {
            "position": 50,
            "key": "link_productboard_features",
            "name": "Link the launch to its Productboard features",
            "connector_key": "productboard",
            "action": "link_features",
            "is_required": False,
            "condition": {"!!": [{"var": "productboard_features"}]},
            "payload_template": {
                "launch_title": "{{ scenario.title }}",
                "launch_url": "{{ playbook.url }}",
                "features": "{{ scenario.productboard_features }}",
            },
            "description": "links the launch to {{ payload.features | count }} Productboard features",
        },
        {
            "position": 52,
            "key": "aha_ready_to_ship",
            "name": "Move the Aha! features to Ready to ship",
            "connector_key": "aha",
            "action": "update_feature_status",
            "for_each": "scenario.aha_features",
            "is_required": False,
            "condition": {"!!": [{"var": "aha_features"}]},
            "payload_template": {"feature": "{{ item }}", "status": "Ready to ship"},
            "description": "moves {{ count }} Aha! features to Ready to ship, tracked until shipped",
        },
        {
            "position": 54,
            "key": "tag_customer_feedback",
            "name": "Tag the customer conversations behind the launch",
            "connector_key": "intercom",
            "action": "tag_conversation",
            "for_each": "scenario.customer_feedback",
            "is_required": False,
            "condition": {"!!": [{"var": "customer_feedback"}]},
            "payload_template": {"conversation": "{{ item }}", "tag": "Launch: {{ scenario.title | truncate:80 }}"},
            "description": "tags {{ count }} Intercom conversations with the launch",
        },
        {
            "position": 56,
            "key": "share_brand_assets",
            "name": "Share the brand assets with the launch team",
            "connector_key": "brandfolder",
            "action": "share_collection",
            "is_required": False,
            "condition": {"!!": [{"var": "asset_collection"}]},
            "payload_template": {
                "collection": "{{ scenario.asset_collection }}",
                "emails": "{{ scenario.stakeholders | emails }}",
                "permission": "guest",
                "message": "Brand assets for {{ scenario.title }}: {{ playbook.url }}",
            },
            "description": "shares the Brandfolder collection with {{ payload.emails | count }} people",
        },
    ],
}


def forward(apps, schema_editor):
    PlaybookStepTemplate = apps.get_model("playbooks", "PlaybookStepTemplate")
    PlaybookTemplate = apps.get_model("playbooks", "PlaybookTemplate")
    for scenario_type, name in SHIPPED.items():
        template = PlaybookTemplate.objects.filter(scenario_type=scenario_type, name=name).first()
        if template is None:
            continue
        step = template.steps.filter(key="create_tasks", connector_key="jira", action="create_issue").first()
        if step is not None:
            step.connector_key, step.action, step.task_kind = "@tasks", "create_task", ""
            step.payload_template = task_payload(scenario_type)
            step.name = step.name.replace(" in Jira", "")
            step.description = "creates {{ count }} tasks in the team's tracker"
            step.save()
        template.description = template.description.replace("tasks in Jira", "tasks in Jira or Asana")
        template.save(update_fields=["description"])
        for new in NEW_STEPS[scenario_type]:
            if not template.steps.filter(key=new["key"]).exists():
                PlaybookStepTemplate.objects.create(template=template, **new)


def backward(apps, schema_editor):
    PlaybookStepTemplate = apps.get_model("playbooks", "PlaybookStepTemplate")
    PlaybookTemplate = apps.get_model("playbooks", "PlaybookTemplate")
    for scenario_type, name in SHIPPED.items():
        for template in PlaybookTemplate.objects.filter(scenario_type=scenario_type, name=name):
            template.description = template.description.replace("tasks in Jira or Asana", "tasks in Jira")
            template.save(update_fields=["description"])
        steps = PlaybookStepTemplate.objects.filter(template__scenario_type=scenario_type, template__name=name)
        steps.filter(key__in=[s["key"] for s in NEW_STEPS[scenario_type]]).delete()
        for step in steps.filter(key="create_tasks", connector_key="@tasks"):
            step.connector_key, step.action, step.task_kind = "jira", "create_issue", "jira_issue"
            step.payload_template = issue_payload(scenario_type)
            step.name = f"{step.name} in Jira"
            step.description = "creates {{ count }} Jira issues in project {{ payload.project_key }}"
            step.save()


class Migration(migrations.Migration):
    dependencies = [("playbooks", "0013_crisis_copies_legal_template")]
    operations = [
        migrations.AlterField(
            model_name="playbooksteptemplate",
            name="connector_key",
            field=models.CharField(
                help_text="Connector that performs the action (jira, email…), or a role the organization's connected tools play: "
                "@chat (the collaboration channel), @meeting (the meeting), @documents, @tasks (Jira or Asana), @signatures (DocuSign).",
                max_length=60,
            ),
        ),
        migrations.RunPython(forward, backward),
    ]
