from django.apps import AppConfig


class PlaybooksConfig(AppConfig):
    name = "playbooks"

    def ready(self) -> None:
        # Celery's and the admin's autodiscovery find only playbooks.tasks / playbooks.admin; human steps and trigger
        # rules keep their tasks and admin in their own packages.
        from playbooks.as_code import admin as as_code_admin  # noqa: F401
        from playbooks.human import admin as human_admin  # noqa: F401
        from playbooks.human import tasks as human_tasks  # noqa: F401
        from playbooks.triggers import admin as trigger_admin  # noqa: F401
        from playbooks.triggers import tasks as trigger_tasks  # noqa: F401
