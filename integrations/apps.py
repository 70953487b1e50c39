from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = "Integrations"

    def ready(self) -> None:
        # Build the connector catalog once per process at start (imports, compiled specs): the first activation or sync a
        # person waits for does not pay for it, and a broken spec is logged at start rather than at first use.
        from integrations.registry import connector_classes

        connector_classes()
