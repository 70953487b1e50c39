"""What a SCIM 2.0 service provider is to Bastion: a bearer token, users and groups."""

from integrations.connectors.base import AuthMethod, BastionType, Capability, Category, ConnectorManifest, CredentialField, EntitySpec

MANIFEST = ConnectorManifest(
    key="scim",
    name="SCIM 2.0",
    category=Category.DIRECTORY,
    description="People and groups from any identity provider that speaks SCIM 2.0 (RFC 7644).",
    auth_methods=(AuthMethod.API_KEY,),
    credential_fields=(CredentialField("token", "Bearer token"),),
    config_fields=(
        CredentialField("page_size", "Page size (count)", is_secret=False, is_required=False),
        CredentialField("user_filter", "Extra SCIM filter for users", is_secret=False, is_required=False),
    ),
    entities=(
        EntitySpec(
            "users", "Users", "SCIM User resources (inactive users are reported as deletions)", supports_incremental=True, bastion_type=BastionType.PERSON
        ),
        EntitySpec("groups", "Groups", "SCIM Group resources with their members", bastion_type=BastionType.GROUP),
    ),
    capabilities=(Capability.READ, Capability.INCREMENTAL, Capability.FIELD_DISCOVERY, Capability.DELETIONS),
    docs_url="https://datatracker.ietf.org/doc/html/rfc7644",
)
