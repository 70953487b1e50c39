"""What the Sandbox Directory is to Bastion: a sandbox-only people and groups directory with signed webhooks."""

from integrations.connectors.base import AuthMethod, BastionType, Capability, Category, ConnectorManifest, CredentialField, EntitySpec, WebhookSpec

EVENT_TYPES = ("person.created", "person.updated", "person.deleted", "directory.changed")

MANIFEST = ConnectorManifest(
    key="sandbox_directory",
    person_rank=90,  # by default, its person data outranks sources with a higher rank
    name="Sandbox Directory",
    category=Category.DIRECTORY,
    description="A people and groups directory served by Bastion's vendor sandbox, for the demo and the sync engine's tests.",
    auth_methods=(AuthMethod.API_KEY,),
    credential_fields=(CredentialField("token", "API token"),),
    entities=(
        EntitySpec("people", "People", "Everyone in the directory.", supports_incremental=True, bastion_type=BastionType.PERSON),
        EntitySpec("groups", "Groups", "Directory groups and their members.", supports_incremental=True, bastion_type=BastionType.GROUP),
    ),
    webhook=WebhookSpec(
        event_types=EVENT_TYPES,
        signature="HMAC-SHA256 of '<X-Directory-Timestamp>.<body>' in X-Directory-Signature (v1=<hex>), 5-minute window.",
    ),
    capabilities=(Capability.READ, Capability.INCREMENTAL, Capability.DELETIONS, Capability.WEBHOOKS),
    sandbox_only=True,  # a stand-in served by Bastion's vendor sandbox, no vendor
)
