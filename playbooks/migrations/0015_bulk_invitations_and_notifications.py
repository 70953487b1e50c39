"""The shipped templates invite and notify each person as a bulk step: per-person rows in the war room, fewer round trips.

Invitations go through the chat tool's bulk call (Slack: one lookup round and one conversations.invite; Teams: one
directory $batch and one membership $batch per 20 people) in chunks of 50; e-mails go out ten sessions at a time from
one task per chunk of 10. A connector without a bulk call for the action still gets one task per person (the engine
checks the manifest when it dispatches). Steps an admin already made bulk keep their chunk size.
"""

from django.db import migrations

SHIPPED = ["Crisis response", "Product launch", "M&A deal team"]
CHUNKS = {"invite_users": 50, "send_email": 10}


def bulk_per_person_steps(apps, schema_editor):
    PlaybookStepTemplate = apps.get_model("playbooks", "PlaybookStepTemplate")
    steps = PlaybookStepTemplate.objects.filter(template__name__in=SHIPPED, action__in=list(CHUNKS), is_bulk=False).exclude(for_each="")
    for step in steps:
        step.is_bulk = True
        step.bulk_chunk_size = CHUNKS[step.action]
        step.save(update_fields=["is_bulk", "bulk_chunk_size"])


def per_item_again(apps, schema_editor):
    PlaybookStepTemplate = apps.get_model("playbooks", "PlaybookStepTemplate")
    PlaybookStepTemplate.objects.filter(template__name__in=SHIPPED, action__in=list(CHUNKS), is_bulk=True).exclude(for_each="").update(is_bulk=False)


class Migration(migrations.Migration):
    dependencies = [("playbooks", "0014_launch_and_deal_tools")]

    operations = [migrations.RunPython(bulk_per_person_steps, per_item_again)]
