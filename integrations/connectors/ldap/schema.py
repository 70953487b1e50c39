"""Directory families (Active Directory, OpenLDAP): their attribute names, DN and GUID normalisation, schema parsing."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from ldap3.core import exceptions as ldap_exc
from ldap3.utils.dn import parse_dn

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


def first_value(attributes: Mapping[str, list[Any]], names: tuple[str, ...]) -> str:
    for name in names:
        for value in attributes.get(name) or []:
            if value not in (None, "", b""):
                return value if isinstance(value, str) else str(value)
    return ""


def parse_schema_classes(definitions: list[str]) -> dict[str, tuple[list[str], list[str], list[str]]]:
    """Parse objectClass definitions (RFC 4512) into name → (MUST, MAY, SUP) lists."""
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
