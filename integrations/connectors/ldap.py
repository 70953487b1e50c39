"""Active Directory / LDAP connector: service-account bind over TLS, paged reads, nested groups, manager chains, incremental sync."""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import secrets
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import ldap3
from ldap3.core import exceptions as ldap_exc
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import parse_dn

from integrations.connectors._ldap_changes import DirectoryChangesMixin
from integrations.connectors._ldap_rules import TEXT_HELP, disabled_by, repair_dn, rules_text, rules_validate
from integrations.connectors.base import BaseConnector, ConnectionTest, ConnectorManifest, CredentialField, EntitySpec, FieldInfo, Page
from integrations.errors import ApiBadRequest, ApiError, ApiForbidden, ApiHostError, ApiNotFound, ApiTimeout, ApiUnauthorized
from integrations.ssrf import OutboundTarget, VettedAddress, host_unresolved, is_ip_literal, vet_outbound

logger = logging.getLogger(__name__)

PAGED_RESULTS_OID = "1.2.840.113556.1.4.319"
IN_CHAIN_RULE = "1.2.840.113556.1.4.1941"  # LDAP_MATCHING_RULE_IN_CHAIN (Active Directory only)
UAC_ACCOUNTDISABLE = 0x2


@dataclass(frozen=True)
class Flavor:
    """Attribute names and behaviour for one directory family."""

    id_attribute: str
    id_is_guid: bool
    change_attribute: str
    user_filter: str
    group_filter: str
    username: tuple[str, ...]
    email: tuple[str, ...]
    name: tuple[str, ...]
    given_name: tuple[str, ...]
    family_name: tuple[str, ...]
    title: tuple[str, ...]
    department: tuple[str, ...]
    phone: tuple[str, ...]
    manager: str
    member_of: str
    group_member: str
    group_name: str
    nested_groups: str  # in_chain | client | off
    disabled_rules: tuple[Mapping[str, Any], ...]
    object_classes: tuple[str, ...]


FLAVORS: dict[str, Flavor] = {
    "ad": Flavor(
        id_attribute="objectGUID",
        id_is_guid=True,
        change_attribute="uSNChanged",
        user_filter="(&(objectCategory=person)(objectClass=user))",
        group_filter="(objectClass=group)",
        username=("sAMAccountName", "userPrincipalName"),
        email=("mail",),
        name=("displayName", "cn"),
        given_name=("givenName",),
        family_name=("sn",),
        title=("title",),
        department=("department",),
        phone=("telephoneNumber", "mobile"),
        manager="manager",
        member_of="memberOf",
        group_member="member",
        group_name="cn",
        nested_groups="in_chain",
        disabled_rules=({"attribute": "userAccountControl", "bitmask": UAC_ACCOUNTDISABLE},),
        object_classes=("user",),
    ),
    "openldap": Flavor(
        id_attribute="entryUUID",
        id_is_guid=False,
        # modifyTimestamp has one-second resolution; entryCSN (maintained by slapd beside it) has microseconds,
        # so a strict "greater than the cursor" filter never skips or repeats a change made in the cursor's second.
        change_attribute="entryCSN",
        user_filter="(objectClass=inetOrgPerson)",
        group_filter="(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))",
        username=("uid",),
        email=("mail",),
        name=("displayName", "cn"),
        given_name=("givenName",),
        family_name=("sn",),
        title=("title",),
        department=("departmentNumber", "ou"),
        phone=("telephoneNumber", "mobile"),
        manager="manager",
        member_of="memberOf",
        group_member="member",
        group_name="cn",
        nested_groups="client",
        disabled_rules=({"attribute": "pwdAccountLockedTime", "present": True}, {"attribute": "nsAccountLock", "values": ["true"]}),
        object_classes=("inetOrgPerson",),
    ),
}

MAPPED_FIELDS = ("username", "email", "name", "given_name", "family_name", "title", "department", "phone")


PARKED_TTL = 600.0  # seconds an idle parked paged search keeps its connection


@dataclass
class _ParkedSearch:
    fingerprint: str
    conn: Any
    lookup_conn: Any
    group_index: Any
    member_of: Any
    dn_ids: Any
    in_chain: Any
    parked_at: float

    def close(self) -> None:
        for conn in (self.conn, self.lookup_conn):
            if conn is not None:
                try:
                    conn.unbind()
                except ldap_exc.LDAPException:
                    logger.info("ldap.unbind_failed")


_PARKED: dict[str, _ParkedSearch] = {}
_PARKED_LOCK = threading.Lock()


def guid_to_str(raw: bytes) -> str:
    """AD objectGUID (16 bytes, first three fields little-endian) → canonical GUID string."""
    return str(uuid.UUID(bytes_le=bytes(raw)))


def _unescape_dn_value(value: str) -> str:
    """RFC 4514 unescape: `\\,` and `\\2C` both become `,` (servers return either form)."""
    out = bytearray()
    index = 0
    while index < len(value):
        char = value[index]
        if char == "\\" and re.fullmatch(r"[0-9A-Fa-f]{2}", value[index + 1 : index + 3]):
            out.append(int(value[index + 1 : index + 3], 16))
            index += 3
        elif char == "\\" and index + 1 < len(value):
            out += value[index + 1].encode()
            index += 2
        else:
            out += char.encode()
            index += 1
    return out.decode("utf-8", "replace")


@lru_cache(maxsize=65536)
def normalize_dn(dn: str) -> str:
    """Case- and escaping-insensitive DN key, so `memberOf`, `member` and `manager` values compare equal."""
    # Joined with control characters: unescaped values may contain "," or "=" themselves.
    if not any(c in dn for c in '\\"+;<>#'):  # fast path: nothing escaped, split directly (most DNs in a directory)
        pairs = [part.split("=", 1) for part in dn.split(",")]
        if all(len(pair) == 2 for pair in pairs):
            return "\x1f".join(f"{a.strip().lower()}\x1e{v.strip().lower()}" for a, v in pairs)
    try:
        parts = parse_dn(dn, escape=False, strip=True)
    except (ldap_exc.LDAPInvalidDnError, ValueError, TypeError):
        return dn.strip().lower()
    return "\x1f".join(f"{attr.strip().lower()}\x1e{_unescape_dn_value(value).strip().lower()}" for attr, value, _sep in parts)


def _first(attributes: Mapping[str, list[Any]], names: tuple[str, ...]) -> str:
    for name in names:
        for value in attributes.get(name) or []:
            if value not in (None, "", b""):
                return value if isinstance(value, str) else str(value)
    return ""


class _PinnedServer(ldap3.Server):
    """An ldap3 Server that connects only to addresses the SSRF guard vetted; `host` stays the name TLS checks."""

    def __init__(self, host: str, addresses: list[VettedAddress], **kwargs: Any):
        super().__init__(host, **kwargs)
        # ldap3's own address_info would run getaddrinfo again at open time (a DNS-rebinding window).
        self._address_info = [[a.family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", a.sockaddr, None, None] for a in addresses]

    @property
    def address_info(self) -> list[list[Any]]:
        return self._address_info


class LdapConnector(DirectoryChangesMixin, BaseConnector):
    """Reads people and groups from Active Directory or any LDAPv3 directory (OpenLDAP inetOrgPerson)."""

    # A paged-search cookie lives on the connection parked in this process: elsewhere the search replays from the start.
    pages_bound_to_process = True

    manifest = ConnectorManifest(
        key="ldap",
        name="Active Directory / LDAP",
        category="directory",
        description="People, groups and reporting lines from Active Directory or OpenLDAP, over StartTLS or LDAPS with paged results.",
        auth_methods=("ldap_bind",),
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
            EntitySpec("users", "Users", "People in the directory (disabled accounts excluded)", supports_incremental=True, bastion_type="person"),
            EntitySpec("groups", "Groups", "Groups with their direct members", bastion_type="group"),
        ),
        capabilities=("read", "paged_results", "incremental", "deletions", "nested_groups", "org_chart", "disabled_rules"),
        docs_url="https://ldap3.readthedocs.io/",
    )
    url_config_schemes = {"server_url": ("ldap", "ldaps")}

    @classmethod
    def outbound_targets(cls, config: Mapping[str, Any]) -> list[OutboundTarget]:
        parts = urlsplit(str(config.get("server_url") or "").strip())
        try:
            port = parts.port or (636 if parts.scheme == "ldaps" else 389)
        except ValueError:
            return []  # refused by the URL check with its own message
        if parts.scheme not in ("ldap", "ldaps") or not parts.hostname:
            return []
        return [OutboundTarget("server_url", parts.scheme, parts.hostname, port)]

    rules_validate = staticmethod(rules_validate)

    @staticmethod
    def config_display(name: str, value: Any) -> str:
        """A setting as the settings page shows it (disabled rules in their wording, whether saved as text or objects)."""
        return rules_text(value) if name == "disabled_rules" and value else str(value or "")

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        flavor_key = str(self.config.get("flavor") or "ad").lower()
        if flavor_key not in FLAVORS:
            raise ApiBadRequest(f"Unknown directory flavor '{flavor_key}': use 'ad' or 'openldap'.")
        self.flavor = FLAVORS[flavor_key]
        overrides = dict(self.config.get("attribute_map") or {})
        self.attribute_map: dict[str, tuple[str, ...]] = {}
        for name in MAPPED_FIELDS:
            value = overrides.get(name) or getattr(self.flavor, name)
            self.attribute_map[name] = (value,) if isinstance(value, str) else tuple(value)
        self.id_attribute = str(self.config.get("id_attribute") or self.flavor.id_attribute)
        self.id_is_guid = self.id_attribute.lower() == "objectguid"
        self.change_attribute = str(self.config.get("incremental_attribute") or self.flavor.change_attribute)
        self.nested_groups = str(self.config.get("nested_groups") or self.flavor.nested_groups)
        self.disabled_rules = rules_validate(self.config.get("disabled_rules")) or tuple(self.flavor.disabled_rules)
        self.deletion_detection = str(self.config.get("deletion_detection") or "auto").lower()
        if self.deletion_detection not in ("auto", "accesslog", "scan", "off"):
            raise ApiBadRequest("deletion_detection must be auto, accesslog, scan or off.")
        self.data_problems: list[dict[str, str]] = []  # bad values met this run (logged against their entry, never retried)
        self.page_size = max(1, min(int(self.config.get("page_size") or 500), 5000))
        self._conn: ldap3.Connection | None = None
        self._lookup_conn: ldap3.Connection | None = None
        self._tls_mode = ""
        self._session = secrets.token_hex(8)  # paged cookies only live on the connection that issued them
        self._dn_ids: dict[str, str] = {}
        self._group_index: dict[str, dict[str, Any]] | None = None
        self._member_of: dict[str, set[str]] = {}
        self._user_groups_in_chain: dict[str, set[str]] | None = None

    # ---------------------------------------------------------------- connection
    @property
    def base_dn(self) -> str:
        base = str(self.config.get("base_dn") or "").strip()
        if not base:
            raise ApiBadRequest("The base DN is required (config 'base_dn').")
        return self._setting_dn("base_dn", base)

    @property
    def group_base_dn(self) -> str:
        return self._setting_dn("group_base_dn", str(self.config.get("group_base_dn") or "").strip()) or self.base_dn

    @staticmethod
    def _setting_dn(name: str, value: str) -> str:
        """A DN from the settings, written as AD exports do (`OU=People, DC=corp`) accepted in its strict form; a bad one is a 400."""
        if not value:
            return ""
        repaired = repair_dn(value)
        if repaired is None:
            raise ApiBadRequest(f"The {name.replace('_', ' ')} {value!r} is not a DN (expected e.g. OU=People,DC=corp,DC=example).")
        return repaired

    def _server(self) -> tuple[ldap3.Server, str]:
        url = str(self.config.get("server_url") or "").strip()
        parts = urlsplit(url)
        if parts.scheme not in ("ldap", "ldaps") or not parts.hostname:
            raise ApiBadRequest(f"Server URL must look like ldaps://host:636 or ldap://host:389, got {url!r}.")
        verify = self.config.get("tls_verify", True) not in (False, "false", "0", 0)
        tls = ldap3.Tls(
            validate=ssl.CERT_REQUIRED if verify else ssl.CERT_NONE,
            ca_certs_data=self.config.get("ca_cert") or None,
            version=ssl.PROTOCOL_TLS_CLIENT if verify else ssl.PROTOCOL_TLS,
            sni=None if is_ip_literal(parts.hostname) else parts.hostname,
        )
        use_ssl = parts.scheme == "ldaps"
        start_tls = self.config.get("start_tls", True) not in (False, "false", "0", 0)
        if use_ssl:
            mode = "ldaps"
        elif start_tls:
            mode = "starttls"
        elif self.config.get("allow_plain") in (True, "true", "1", 1):
            mode = "plain"
        else:
            raise ApiForbidden("Refusing to send the bind password unencrypted: use ldaps://, StartTLS, or set allow_plain for a lab directory.")
        timeout = int(self.config.get("timeout") or 10)
        try:
            port = parts.port or (636 if use_ssl else 389)
        except ValueError as exc:
            raise ApiBadRequest(f"Server URL has an invalid port: {url!r}.") from exc
        # The SSRF guard: resolve once, vet every answer, and let ldap3 connect only to those addresses.
        try:
            addresses = vet_outbound(parts.hostname, port, parts.scheme)
        except socket.gaierror as exc:  # a resolver outage is retried; only a refused answer is UnsafeBaseUrl
            raise host_unresolved(parts.hostname, exc) from exc
        server = _PinnedServer(parts.hostname, addresses, port=port, use_ssl=use_ssl, tls=tls, get_info=ldap3.NONE, connect_timeout=timeout)
        return server, mode

    def connection(self) -> ldap3.Connection:
        """The bound connection, opened once per connector instance (paged cookies are tied to it)."""
        if self._conn is not None and self._conn.bound and not self._conn.closed:
            return self._conn
        self._conn = self._bind()
        self._session = secrets.token_hex(8)
        return self._conn

    def lookup_connection(self) -> ldap3.Connection:
        """A second connection for lookups between pages: another search on the paging connection voids its cookie."""
        if self._lookup_conn is not None and self._lookup_conn.bound and not self._lookup_conn.closed:
            return self._lookup_conn
        self._lookup_conn = self._bind()
        return self._lookup_conn

    def _bind(self) -> ldap3.Connection:
        server, mode = self._server()
        bind_dn = str(self.credentials.get("bind_dn") or "")
        password = str(self.credentials.get("bind_password") or "")
        if not bind_dn or not password:
            # An empty password makes a simple bind anonymous (RFC 4513 5.1.2): never let that pass for a login.
            raise ApiUnauthorized("The service account DN and password are both required.")
        conn = ldap3.Connection(
            server,
            user=bind_dn,
            password=password,
            auto_bind=ldap3.AUTO_BIND_NONE,
            raise_exceptions=True,
            receive_timeout=int(self.config.get("timeout") or 30),
            read_only=True,
        )
        with _ldap_errors("bind"):
            conn.open()
            if mode == "starttls":
                conn.start_tls()
            conn.bind()
        self._tls_mode = mode
        return conn

    def close(self) -> None:
        for conn in (self._conn, self._lookup_conn):
            if conn is not None:
                try:
                    conn.unbind()
                except ldap_exc.LDAPException:
                    logger.info("ldap.unbind_failed")
        self._conn = self._lookup_conn = None

    def test_connection(self) -> ConnectionTest:
        conn = self.connection()
        with _ldap_errors("whoami"):
            identity = conn.extend.standard.who_am_i() or ""
        if isinstance(identity, bytes):
            identity = identity.decode("utf-8", "replace")
        with _ldap_errors("base"):
            try:
                conn.search(self.base_dn, "(objectClass=*)", search_scope=ldap3.BASE, attributes=["1.1"])
            except ldap_exc.LDAPNoSuchObjectResult as exc:
                raise ApiNotFound(f"The base DN {self.base_dn!r} does not exist on the server.") from exc
        return ConnectionTest(
            ok=True,
            identity=identity.removeprefix("dn:").removeprefix("u:"),
            detail={"tls": self._tls_mode, "base_dn": self.base_dn, "flavor": "ad" if self.flavor is FLAVORS["ad"] else "openldap"},
            account_id=self.base_dn,
        )

    # ---------------------------------------------------------------- discovery
    def discover_fields(self, entity: str) -> list[FieldInfo]:
        """Attributes of the person/group object classes from the server's schema, mapped ones first."""
        conn = self.connection()
        fields: list[FieldInfo] = []
        if entity == "users":
            for name, attrs in self.attribute_map.items():
                fields.append(FieldInfo(name=name, label=name.replace("_", " ").title(), path=f"$.attributes.{attrs[0]}[0]"))
            fields += [
                FieldInfo("manager_external_id", "Manager", type="user", path="$.manager_external_id"),
                FieldInfo("groups", "Groups (nested expanded)", type="array", path="$.groups"),
            ]
            classes = self.flavor.object_classes
        elif entity == "groups":
            fields.append(FieldInfo("name", "Name", path=f"$.attributes.{self.flavor.group_name}[0]", is_required=True))
            fields.append(FieldInfo("members", "Members", type="array", path="$.members"))
            classes = ("groupOfNames",) if self.flavor is FLAVORS["openldap"] else ("group",)
        else:
            raise ApiNotFound(f"LDAP has no entity '{entity}'.")
        with _ldap_errors("schema"):
            schema_dn = self._schema_dn(conn)
            conn.search(schema_dn, "(objectClass=subschema)", search_scope=ldap3.BASE, attributes=["objectClasses", "attributeTypes"])
        definitions = conn.response[0].get("attributes", {}) if conn.response else {}
        object_classes = _parse_schema_classes(definitions.get("objectClasses") or [])
        seen = {f.name for f in fields}
        pending, visited = list(classes), set()
        while pending:
            oc = pending.pop().lower()
            if oc in visited or oc not in object_classes:
                continue
            visited.add(oc)
            must, may, sup = object_classes[oc]
            pending += sup
            for attr, required in [(a, True) for a in must] + [(a, False) for a in may]:
                if attr not in seen:
                    seen.add(attr)
                    fields.append(FieldInfo(name=attr, label=attr, path=f"$.attributes.{attr}", is_required=required))
        return fields

    @staticmethod
    def _schema_dn(conn: ldap3.Connection) -> str:
        conn.search("", "(objectClass=*)", search_scope=ldap3.BASE, attributes=["subschemaSubentry"])
        values = conn.response[0]["attributes"].get("subschemaSubentry") if conn.response else None
        return (values[0] if isinstance(values, list) and values else values) or "cn=Subschema"

    # ---------------------------------------------------------------- reading
    def read(self, entity: str, *, cursor: Any = None, page: Any = None) -> Page:
        if entity == "users":
            return self._read_users(cursor=cursor, state=dict(page or {}))
        if entity == "groups":
            return self._read_groups(state=dict(page or {}))
        raise ApiNotFound(f"LDAP has no entity '{entity}'.")

    def _user_attributes(self) -> list[str]:
        names = {self.id_attribute, self.change_attribute, self.flavor.manager, self.flavor.member_of, "objectClass", "cn"}
        for attrs in self.attribute_map.values():
            names.update(attrs)
        names.update(self._rule_attributes())
        return sorted(names)

    def _rule_attributes(self) -> set[str]:
        return {str(rule["attribute"]) for rule in self.disabled_rules if rule.get("attribute")}

    def _change_filter(self, cursor: Any) -> str:
        if cursor in (None, ""):
            return ""
        value = str(cursor)
        attr = self.change_attribute
        if attr.lower() == "usnchanged":
            return f"({attr}>={int(value) + 1})"
        if attr.lower() == "entrycsn":
            escaped = escape_filter_chars(value)
            return f"(&({attr}>={escaped})(!({attr}={escaped})))"
        # Second-resolution timestamps (modifyTimestamp, whenChanged): inclusive, so a change in the cursor's
        # own second is never missed; the records store skips the re-read unchanged ones by content hash.
        return f"({attr}>={escape_filter_chars(value)})"

    def _max_change(self, current: Any, value: str) -> Any:
        if not value:
            return current
        if self.change_attribute.lower() == "usnchanged":
            return str(max(int(current or 0), int(value)))
        return value if current is None or value > current else current

    def _read_users(self, *, cursor: Any, state: dict[str, Any]) -> Page:
        if not state:  # start of a run: group and DN caches are rebuilt so each run sees current memberships
            self._group_index = None
            self._user_groups_in_chain = None
            self._dn_ids = {}
        # The server's change high-water mark before the first page: changes made while the run pages are re-read next
        # time instead of being skipped because a later page carried a higher value.
        mark = state.get("mark") if state else self._change_high_water()
        base_filter = str(self.config.get("user_filter") or self.flavor.user_filter)
        change = self._change_filter(cursor)
        search_filter = f"(&{base_filter}{change})" if change else base_filter
        entries, next_state = self._paged(self.base_dn, search_filter, self._user_attributes(), state)
        records: list[dict[str, Any]] = []
        deleted: list[str] = []
        run_max = state.get("max")
        for entry in entries:
            record = self._record(entry)
            self._dn_ids[normalize_dn(record["dn"])] = record["external_id"]
            run_max = self._max_change(run_max, record["changed"])
            if record["is_disabled"]:
                deleted.append(record["external_id"])  # disabled accounts are excluded and reported as removals
                continue
            records.append(record)
        self._enrich(records)
        is_full = not change
        if next_state is None:
            final = mark if mark is not None else run_max
            new_cursor = final if final is not None and str(final) != str(cursor) else None
            present = None
            if change:  # an incremental run: deletions and moves out of scope arrive in this same cycle
                removed, present, method = self.incremental_removals(cursor)
                deleted += removed
                logger.info("ldap.incremental.removals", extra={"method": method, "removed": len(removed), "present": len(present or ())})
            return Page(records=records, next_page=None, cursor=new_cursor, is_full_scan=is_full, deleted_ids=deleted, present_ids=present)
        next_state["max"] = run_max
        next_state["mark"] = mark
        self._park()
        return Page(records=records, next_page=next_state, cursor=None, is_full_scan=is_full, deleted_ids=deleted)

    def _change_high_water(self) -> str | None:
        """AD: rootDSE highestCommittedUSN; OpenLDAP with syncprov: the naming context's contextCSN; else None (max seen is used)."""
        attr = self.change_attribute.lower()
        if attr not in ("usnchanged", "entrycsn"):
            return None
        conn = self.lookup_connection()
        with _ldap_errors("rootDSE"):
            conn.search("", "(objectClass=*)", search_scope=ldap3.BASE, attributes=["highestCommittedUSN", "namingContexts"])
        root = conn.response[0].get("attributes", {}) if conn.response else {}
        if attr == "usnchanged":
            value = _first(root, ("highestCommittedUSN",))
            return value if value.isdigit() else None
        base = normalize_dn(self.base_dn)
        contexts = [c for c in root.get("namingContexts") or [] if isinstance(c, str) and base.endswith(normalize_dn(c))]
        if not contexts:
            return None
        with _ldap_errors("contextCSN"):
            try:
                conn.search(contexts[0], "(objectClass=*)", search_scope=ldap3.BASE, attributes=["contextCSN"])
            except ldap_exc.LDAPNoSuchObjectResult:
                return None
        values = conn.response[0].get("attributes", {}).get("contextCSN") if conn.response else None
        values = [v for v in (values or []) if isinstance(v, str)]
        return max(values) if values else None

    def _read_groups(self, *, state: dict[str, Any]) -> Page:
        if not state:
            self._dn_ids = {}
            self._index_ids(self.base_dn)  # one paged scan instead of a lookup per member
        group_filter = str(self.config.get("group_filter") or self.flavor.group_filter)
        attributes = sorted({self.id_attribute, self.flavor.group_name, self.flavor.group_member, "objectClass", self.change_attribute})
        entries, next_state = self._paged(self.group_base_dn, group_filter, attributes, state)
        records = []
        for entry in entries:
            record = self._record(entry)
            member_dns = [m for m in record["attributes"].get(self.flavor.group_member, []) if isinstance(m, str)]
            record["members"] = [i for i in (self._resolve_id(dn, entry_dn=record["dn"], attribute=self.flavor.group_member) for dn in member_dns) if i]
            records.append(record)
        if next_state is not None:
            self._park()
        return Page(records=records, next_page=next_state, cursor=None, is_full_scan=True)

    def _paged(self, base: str, search_filter: str, attributes: list[str], state: dict[str, Any]) -> tuple[list[dict], dict | None]:
        """One page of a paged search (RFC 2696).

        The sync engine builds a new connector for every page, but a paged cookie only works on the connection that
        issued it: the open connection (and the run's caches) wait in this process's registry under the run's session
        token. When the next page lands in another process, or the connection is gone, the search is replayed from the
        start and the entries already delivered are skipped (correct, slower).
        """
        cookie = base64.b64decode(state["cookie"]) if state.get("cookie") else None
        offset = int(state.get("offset") or 0)
        if cookie is not None and state.get("session") != self._session:
            self._adopt(str(state.get("session") or ""))
        conn = self.connection()
        if cookie is not None and state.get("session") != self._session:
            entries, cookie = self._skip_to(conn, base, search_filter, attributes, offset)
        else:
            try:
                entries, cookie = self._search_page(conn, base, search_filter, attributes, cookie)
            except ApiBadRequest as exc:
                if cookie is None or "cookie" not in str(exc).lower():
                    raise
                logger.info("ldap.paged_cookie_expired", extra={"offset": offset})
                entries, cookie = self._skip_to(conn, base, search_filter, attributes, offset)
        if not cookie:
            return entries, None
        return entries, {"cookie": base64.b64encode(cookie).decode(), "offset": offset + len(entries), "session": self._session}

    def _fingerprint(self) -> str:
        """Who may adopt a parked connection: the same server, account, password and search."""
        material = "\x00".join(
            str(v)
            for v in (
                self.config.get("server_url"),
                self.credentials.get("bind_dn"),
                self.credentials.get("bind_password"),
                self.config.get("base_dn"),
                self.config.get("user_filter"),
                self.config.get("flavor"),
            )
        )
        return hashlib.sha256(material.encode()).hexdigest()

    def _park(self) -> None:
        """Leave the open connection and the run's caches for whichever connector reads the next page in this process."""
        now = time.monotonic()
        with _PARKED_LOCK:
            for token, parked in list(_PARKED.items()):
                if now - parked.parked_at > PARKED_TTL:
                    _PARKED.pop(token, None)
                    parked.close()
            _PARKED[self._session] = _ParkedSearch(
                self._fingerprint(), self._conn, self._lookup_conn, self._group_index, self._member_of, self._dn_ids, self._user_groups_in_chain, now
            )

    def _adopt(self, session: str) -> None:
        with _PARKED_LOCK:
            parked = _PARKED.pop(session, None)  # exclusive: a duplicate step replays instead of sharing the socket
        if parked is None:
            return
        if parked.fingerprint != self._fingerprint() or parked.conn is None or not parked.conn.bound or parked.conn.closed:
            parked.close()
            return
        self._conn, self._lookup_conn, self._session = parked.conn, parked.lookup_conn, session
        self._group_index, self._member_of, self._dn_ids, self._user_groups_in_chain = parked.group_index, parked.member_of, parked.dn_ids, parked.in_chain
        self._tls_mode = self._tls_mode or "adopted"

    def _search_page(self, conn: ldap3.Connection, base: str, search_filter: str, attributes: list[str], cookie: bytes | None) -> tuple[list[dict], bytes]:
        with _ldap_errors("search"):
            try:
                conn.search(base, search_filter, search_scope=ldap3.SUBTREE, attributes=attributes, paged_size=self.page_size, paged_cookie=cookie)
            except ldap_exc.LDAPNoSuchObjectResult as exc:
                raise ApiNotFound(f"The base DN {base!r} does not exist on the server.") from exc
        entries = [e for e in conn.response if e.get("type") == "searchResEntry"]
        control = (conn.result.get("controls") or {}).get(PAGED_RESULTS_OID) or {}
        return entries, (control.get("value") or {}).get("cookie") or b""

    def _skip_to(self, conn: ldap3.Connection, base: str, search_filter: str, attributes: list[str], offset: int) -> tuple[list[dict], bytes]:
        skipped = 0
        cookie: bytes | None = None
        while True:
            entries, cookie = self._search_page(conn, base, search_filter, attributes, cookie)
            if skipped + len(entries) > offset or not cookie:
                return entries[max(0, offset - skipped) :], cookie
            skipped += len(entries)

    def _record(self, entry: Mapping[str, Any]) -> dict[str, Any]:
        """The raw record: DN, attributes as lists of strings, plus the resolved id, change marker and disabled flag."""
        attributes: dict[str, list[Any]] = {}
        for name, values in (entry.get("attributes") or {}).items():
            values = values if isinstance(values, list) else [values]
            if name.lower() == self.id_attribute.lower() and self.id_is_guid:
                continue
            attributes[name] = [v if isinstance(v, str) else base64.b64encode(v).decode() if isinstance(v, bytes) else str(v) for v in values]
        raw = entry.get("raw_attributes") or {}
        if self.id_is_guid:
            guid = next((v for k, v in raw.items() if k.lower() == self.id_attribute.lower()), [])
            external_id = guid_to_str(guid[0]) if guid and len(guid[0]) == 16 else ""
        else:
            external_id = _first(attributes, (self.id_attribute,))
        if not external_id:
            raise ApiBadRequest(f"Entry {entry.get('dn')!r} has no {self.id_attribute}; check the service account can read it.")
        return {
            "dn": entry["dn"],
            "external_id": external_id,
            "attributes": attributes,
            "changed": _first(attributes, (self.change_attribute,)),
            "is_disabled": disabled_by(self.disabled_rules, normalize_dn(entry["dn"]), attributes) is not None,
        }

    # ---------------------------------------------------------------- enrichment: manager ids, nested groups
    def _enrich(self, records: list[dict[str, Any]]) -> None:
        for record in records:
            manager_dn = _first(record["attributes"], (self.flavor.manager,))
            record["manager_dn"] = manager_dn
            record["manager_external_id"] = self._resolve_id(manager_dn, entry_dn=record["dn"], attribute=self.flavor.manager) if manager_dn else ""
            problems = [p for p in self.data_problems if p["entry"] == record["dn"]]
            if problems:
                record["problems"] = problems  # stored with the record: the entry's own data problem, visible where it is read
            record["groups"] = self._groups_for(record)

    def _data_problem(self, entry_dn: str, attribute: str, value: str, problem: str) -> None:
        """A bad value is the entry's data problem: logged against it and kept for its record, never a reason to retry a page."""
        self.data_problems.append({"entry": entry_dn, "attribute": attribute, "value": value[:300], "problem": problem})
        logger.warning("ldap.entry.bad_value", extra={"entry": entry_dn, "attribute": attribute, "problem": problem})

    def _entry_id(self, entry: Mapping[str, Any]) -> str:
        """The external id of a search result entry ("" when the bind cannot read it)."""
        if self.id_is_guid:
            raw = next((v for k, v in (entry.get("raw_attributes") or {}).items() if k.lower() == self.id_attribute.lower()), [])
            return guid_to_str(raw[0]) if raw and len(raw[0]) == 16 else ""
        return _first(entry.get("attributes") or {}, (self.id_attribute,))

    @staticmethod
    def _dn_key(dn: str) -> str:
        return normalize_dn(dn)

    def _resolve_id(self, dn: str, *, entry_dn: str = "", attribute: str = "") -> str:
        """External id of any DN (cached per run); "" when it does not exist or cannot be read (e.g. outside the bind's reach)."""
        key = normalize_dn(dn)
        if key in self._dn_ids:
            return self._dn_ids[key]
        strict = repair_dn(dn)
        if strict is None:
            self._data_problem(entry_dn, attribute, dn, "not a DN; the reference is left unresolved")
            self._dn_ids[key] = ""
            return ""
        if strict != dn:
            self._data_problem(entry_dn, attribute, dn, f"DN written loosely; read as {strict}")
            dn = strict
        conn = self.lookup_connection()
        resolved = ""
        with _ldap_errors("resolve"):
            try:
                conn.search(dn, "(objectClass=*)", search_scope=ldap3.BASE, attributes=[self.id_attribute])
                entries = [e for e in conn.response if e.get("type") == "searchResEntry"]
                if entries:
                    if self.id_is_guid:
                        raw = next((v for k, v in entries[0]["raw_attributes"].items() if k.lower() == self.id_attribute.lower()), [])
                        resolved = guid_to_str(raw[0]) if raw and len(raw[0]) == 16 else ""
                    else:
                        resolved = _first(entries[0]["attributes"], (self.id_attribute,))
            except (
                ldap_exc.LDAPNoSuchObjectResult,
                ldap_exc.LDAPInvalidDNSyntaxResult,
                ldap_exc.LDAPInsufficientAccessRightsResult,
                ldap_exc.LDAPInvalidDnError,
            ):
                logger.info("ldap.reference_unresolved", extra={"reason": "missing_or_unreadable"})
        self._dn_ids[key] = resolved
        return resolved

    def _index_ids(self, base: str) -> None:
        """Fill the DN → external id cache for every entry under `base` (ids only, paged, on the lookup connection)."""
        conn = self.lookup_connection()
        cookie: bytes | None = None
        while True:
            entries, cookie = self._search_page(conn, base, "(objectClass=*)", [self.id_attribute], cookie)
            for entry in entries:
                if self.id_is_guid:
                    raw = next((v for k, v in (entry.get("raw_attributes") or {}).items() if k.lower() == self.id_attribute.lower()), [])
                    external_id = guid_to_str(raw[0]) if raw and len(raw[0]) == 16 else ""
                else:
                    external_id = _first(entry.get("attributes") or {}, (self.id_attribute,))
                if external_id:
                    self._dn_ids[normalize_dn(entry["dn"])] = external_id
            if not cookie:
                return

    def _groups_index(self) -> dict[str, dict[str, Any]]:
        """normalized group DN → {name, members (normalized DNs), parents}; built once per run."""
        if self._group_index is not None:
            return self._group_index
        conn = self.lookup_connection()
        group_filter = str(self.config.get("group_filter") or self.flavor.group_filter)
        attributes = [self.flavor.group_name, self.flavor.group_member]
        index: dict[str, dict[str, Any]] = {}
        cookie: bytes | None = None
        while True:
            entries, cookie = self._search_page(conn, self.group_base_dn, group_filter, attributes, cookie)
            for entry in entries:
                attrs = entry.get("attributes") or {}
                name = _first(attrs, (self.flavor.group_name,)) or entry["dn"]
                members = [normalize_dn(m) for m in attrs.get(self.flavor.group_member) or [] if isinstance(m, str)]
                index[normalize_dn(entry["dn"])] = {"name": name, "members": members, "parents": set()}
            if not cookie:
                break
        member_of: dict[str, set[str]] = {}
        for group_dn, group in index.items():
            for member in group["members"]:
                member_of.setdefault(member, set()).add(group_dn)
                if member in index:
                    index[member]["parents"].add(group_dn)
        self._member_of = member_of
        self._group_index = index
        return index

    def _groups_for(self, record: Mapping[str, Any]) -> list[str]:
        if self.nested_groups == "in_chain":
            return self._groups_in_chain(record["dn"])
        index = self._groups_index()
        direct_dns = [normalize_dn(v) for v in record["attributes"].get(self.flavor.member_of, []) if isinstance(v, str)]
        if not direct_dns:  # directories without memberOf: derive from group member lists
            direct_dns = sorted(self._member_of.get(normalize_dn(record["dn"]), ()))
        seen: set[str] = set()
        pending = list(direct_dns)
        while pending:
            group_dn = pending.pop()
            if group_dn in seen:
                continue  # cycle protection
            seen.add(group_dn)
            if self.nested_groups != "off" and group_dn in index:
                pending.extend(index[group_dn]["parents"])
        return sorted(index[dn]["name"] if dn in index else dn for dn in seen)

    def _groups_in_chain(self, user_dn: str) -> list[str]:
        """Active Directory: the server expands nesting (one in-chain query per group, once per run)."""
        if self._user_groups_in_chain is None:
            conn = self.lookup_connection()
            mapping: dict[str, set[str]] = {}
            base_filter = str(self.config.get("user_filter") or self.flavor.user_filter)
            for group_dn, group in self._groups_index().items():
                chain_filter = f"(&{base_filter}({self.flavor.member_of}:{IN_CHAIN_RULE}:={escape_filter_chars(group_dn)}))"
                cookie: bytes | None = None
                while True:
                    entries, cookie = self._search_page(conn, self.base_dn, chain_filter, ["1.1"], cookie)
                    for entry in entries:
                        mapping.setdefault(normalize_dn(entry["dn"]), set()).add(group["name"])
                    if not cookie:
                        break
            self._user_groups_in_chain = mapping
        return sorted(self._user_groups_in_chain.get(normalize_dn(user_dn), set()))

    def org_chart(self, records: list[Mapping[str, Any]]) -> dict[str, list[str]]:
        """Manager chains: external id → [manager, manager's manager, …] (cycle-safe), from one import's records."""
        managers = {str(r["external_id"]): str(r.get("manager_external_id") or "") for r in records}
        chains: dict[str, list[str]] = {}
        for person in managers:
            chain, seen, current = [], {person}, managers.get(person, "")
            while current and current not in seen:
                chain.append(current)
                seen.add(current)
                current = managers.get(current, "")
            chains[person] = chain
        return chains

    # ---------------------------------------------------------------- transformers
    def external_id(self, entity: str, record: Mapping[str, Any]) -> str:
        return str(record["external_id"])

    def updated_at(self, entity: str, record: Mapping[str, Any]) -> str | None:
        return record.get("changed") or None

    def to_bastion(self, entity: str, record: Mapping[str, Any]) -> dict[str, Any]:
        attributes = record.get("attributes") or {}
        if entity == "groups":
            return {"external_id": record["external_id"], "name": _first(attributes, (self.flavor.group_name,)), "members": list(record.get("members") or [])}
        mapped = {name: _first(attributes, attrs) for name, attrs in self.attribute_map.items()}
        name = mapped["name"] or f"{mapped['given_name']} {mapped['family_name']}".strip()
        return {
            "external_id": record["external_id"],
            "email": mapped["email"].lower(),
            "name": name,
            "given_name": mapped["given_name"],
            "family_name": mapped["family_name"],
            "title": mapped["title"],
            "department": mapped["department"],
            "phone": mapped["phone"],
            "manager_external_id": record.get("manager_external_id") or "",
            "groups": list(record.get("groups") or []),
            "is_active": not record.get("is_disabled", False),
            "username": mapped["username"],
        }

    def iter_all(self, entity: str, *, cursor: Any = None) -> Iterator[Page]:
        """Every page of one run (for scripts and benchmarks; the sync engine drives `read` itself)."""
        page = self.read(entity, cursor=cursor)
        yield page
        while page.next_page is not None:
            page = self.read(entity, cursor=cursor, page=page.next_page)
            yield page


def _parse_schema_classes(definitions: list[str]) -> dict[str, tuple[list[str], list[str], list[str]]]:
    """Parse objectClass definitions (RFC 4512) into name → (MUST, MAY, SUP) lists."""
    import re

    parsed: dict[str, tuple[list[str], list[str], list[str]]] = {}

    def terms(definition: str, keyword: str) -> list[str]:
        match = re.search(rf"\b{keyword}\s+(\([^)]*\)|\S+)", definition)
        if not match:
            return []
        return [t for t in re.split(r"[\s$()']+", match.group(1)) if t]

    for definition in definitions:
        if isinstance(definition, bytes):
            definition = definition.decode("utf-8", "replace")
        names = re.search(r"NAME\s+(\([^)]*\)|'[^']*')", definition)
        if not names:
            continue
        for name in re.findall(r"'([^']+)'", names.group(1)):
            parsed[name.lower()] = (terms(definition, "MUST"), terms(definition, "MAY"), terms(definition, "SUP"))
    return parsed


def _socket_failure(exc: Exception) -> str:
    """A fixed description of why the socket failed: ldap3's text mixes local errors with what the peer sent, so it is not shown."""
    text = str(exc).lower()
    if "certificate" in text:
        return "TLS failed, the certificate was not accepted (check the CA certificate and the host name)"
    if "ssl" in text or "tls" in text:
        return "TLS failed (check the port and that the server speaks TLS there)"
    if "refused" in text:
        return "the connection was refused"
    if "timed out" in text or "timeout" in text:
        return "the connection timed out"
    return "the connection failed or was closed"


class _ldap_errors:
    """Translate ldap3 exceptions into the shared error tree (never leaking the password)."""

    def __init__(self, operation: str):
        self.operation = operation

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc is None or isinstance(exc, ApiError | ldap_exc.LDAPNoSuchObjectResult):
            return False  # a missing object is for the caller to interpret
        # Whatever answers on the configured port writes this text (a banner, when it is no directory): logged, never shown.
        logger.warning("ldap.operation_failed", extra={"operation": self.operation, "error_class": type(exc).__name__, "detail": str(exc)[:500]})
        if isinstance(exc, ldap_exc.LDAPInvalidCredentialsResult):
            raise ApiUnauthorized("The directory refused the service account credentials (invalid credentials).") from exc
        if isinstance(exc, ldap_exc.LDAPInsufficientAccessRightsResult | ldap_exc.LDAPStrongerAuthRequiredResult):
            raise ApiForbidden(f"The directory refused the {self.operation} (insufficient access rights or stronger authentication required).") from exc
        if isinstance(exc, ldap_exc.LDAPNoSuchObjectResult):
            return False  # the caller decides what a missing object means
        if isinstance(exc, ldap_exc.LDAPSocketReceiveError | ldap_exc.LDAPResponseTimeoutError):
            raise ApiTimeout(f"The directory did not answer the {self.operation} in time.") from exc
        if isinstance(exc, ldap_exc.LDAPStartTLSError | ssl.SSLError):
            raise ApiHostError(f"TLS with the directory failed ({self.operation}): check the certificate, the CA and the port.") from exc
        if isinstance(exc, ldap_exc.LDAPSocketOpenError | ldap_exc.LDAPCommunicationError | ldap_exc.LDAPSessionTerminatedByServerError):
            raise ApiHostError(f"Could not reach the directory ({self.operation}): {_socket_failure(exc)}.") from exc
        if isinstance(exc, ldap_exc.LDAPInvalidDnError | ldap_exc.LDAPInvalidFilterError | ldap_exc.LDAPAttributeError):
            # Refused client-side before anything was sent: bad data or settings, which a retry cannot fix.
            raise ApiBadRequest(f"The {self.operation} could not be sent: {exc}") from exc
        if isinstance(exc, ldap_exc.LDAPSizeLimitExceededResult | ldap_exc.LDAPAdminLimitExceededResult):
            raise ApiBadRequest(f"The directory's size limit stopped the {self.operation}; lower page_size.") from exc
        if isinstance(exc, ldap_exc.LDAPOperationResult):
            raise ApiBadRequest(f"The directory refused the {self.operation} ({exc.description}).") from exc
        if isinstance(exc, ldap_exc.LDAPException):
            raise ApiHostError(f"LDAP {self.operation} failed ({type(exc).__name__}).") from exc
        return False


CONNECTOR = LdapConnector
