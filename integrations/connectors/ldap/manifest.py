"""What an LDAP directory is to Bastion: a service-account bind, the server and search settings, users and groups."""

from integrations.connectors.base import AuthMethod, BastionType, Capability, Category, ConnectorManifest, CredentialField, EntitySpec
from integrations.connectors.ldap.rules import TEXT_HELP

MANIFEST = ConnectorManifest(
    key="ldap",
    person_rank=10,  # by default, its person data outranks sources with a higher rank
    name="Active Directory / LDAP",
    category=Category.DIRECTORY,
    description="People, groups and reporting lines from Active Directory or OpenLDAP, over StartTLS or LDAPS with paged results.",
    auth_methods=(AuthMethod.LDAP_BIND,),
    credential_fields=(
        CredentialField("bind_dn", "Service account DN", is_secret=False, help_text="e.g. CN=svc-bastion,OU=Service,DC=corp,DC=example"),
        CredentialField("bind_password", "Service account password"),
    ),
    config_fields=(
        CredentialField("server_url", "Server URL", is_secret=False, help_text="ldaps://dc1.corp.example:636 or ldap://host:389 (StartTLS)"),
        CredentialField("base_dn", "Base DN", is_secret=False),
        CredentialField("flavor", "Directory type", is_secret=False, is_required=False, help_text="ad (Active Directory) or openldap"),
        CredentialField("user_filter", "User filter", is_secret=False, is_required=False),
        CredentialField("group_base_dn", "Group base DN", is_secret=False, is_required=False),
        CredentialField("group_filter", "Group filter", is_secret=False, is_required=False),
        CredentialField("start_tls", "Use StartTLS on ldap://", is_secret=False, is_required=False),
        CredentialField("allow_plain", "Allow unencrypted bind (lab only)", is_secret=False, is_required=False),
        CredentialField("ca_cert", "CA certificate (PEM)", is_secret=False, is_required=False),
        CredentialField("page_size", "Page size", is_secret=False, is_required=False),
        CredentialField("disabled_rules", "Disabled accounts", is_secret=False, is_required=False, help_text=TEXT_HELP),
    ),
    entities=(
        EntitySpec("users", "Users", "People in the directory (disabled accounts excluded)", supports_incremental=True, bastion_type=BastionType.PERSON),
        EntitySpec("groups", "Groups", "Groups with their direct members", bastion_type=BastionType.GROUP),
    ),
    capabilities=(
        Capability.READ,
        Capability.PAGED_RESULTS,
        Capability.INCREMENTAL,
        Capability.DELETIONS,
        Capability.NESTED_GROUPS,
        Capability.ORG_CHART,
        Capability.DISABLED_RULES,
    ),
    docs_url="https://ldap3.readthedocs.io/",
)
