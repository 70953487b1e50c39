"""The people directory's models now live in the people app (people 0001): forget them here, state only; no table changes."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("sync", "0011_plural_names"),
        ("people", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(model_name="person", name="manager"),
                migrations.RemoveField(model_name="person", name="organization"),
                migrations.RemoveField(model_name="personidentity", name="person"),
                migrations.RemoveField(model_name="personidentity", name="integration"),
                migrations.RemoveField(model_name="personidentity", name="organization"),
                migrations.RemoveField(model_name="suppressedidentity", name="organization"),
                migrations.DeleteModel(name="PeopleSettings"),
                migrations.DeleteModel(name="Person"),
                migrations.DeleteModel(name="PersonIdentity"),
                migrations.DeleteModel(name="SuppressedIdentity"),
            ],
            database_operations=[],
        ),
    ]
