"""What Microsoft Entra ID is to Bastion: client credentials, entities and capabilities."""

from integrations.connectors.base import AuthMethod, BastionType, Capability, Category, ConnectorManifest, CredentialField, EntitySpec

MANIFEST = ConnectorManifest(
    key="entra",
    person_rank=30,  # by default, its person data outranks sources with a higher rank
    name="Microsoft Entra ID",
    category=Category.DIRECTORY,
    description="People, managers and groups from Microsoft Entra ID (Azure AD) through Microsoft Graph, kept current with delta queries.",
    auth_methods=(AuthMethod.SERVICE_ACCOUNT,),
    credential_fields=(
        CredentialField("client_id", "Application (client) id", is_secret=False),
        CredentialField("client_secret", "Client secret"),
    ),
    config_fields=(
        CredentialField("tenant_id", "Directory (tenant) id", is_secret=False),
        CredentialField("login_base_url", "Login base URL", is_secret=False, is_required=False, help_text="https://login.microsoftonline.com"),
    ),
    default_base_url="https://graph.microsoft.com/v1.0",
    entities=(
        EntitySpec("users", "Users", "People (disabled accounts are reported as deletions)", supports_incremental=True, bastion_type=BastionType.PERSON),
        EntitySpec("groups", "Groups", "Groups with their direct members", bastion_type=BastionType.GROUP),
    ),
    capabilities=(Capability.READ, Capability.INCREMENTAL, Capability.FIELD_DISCOVERY, Capability.DELETIONS, Capability.ORG_CHART),
    docs_url="https://learn.microsoft.com/graph/delta-query-users",
)
