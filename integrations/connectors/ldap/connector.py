"""The Active Directory / LDAP connector: people and groups over paged reads, nested groups, manager chains, incremental sync."""

from __future__ import annotations

import base64
import logging
import secrets
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import ldap3
from ldap3.core import exceptions as ldap_exc
from ldap3.utils.conv import escape_filter_chars

from integrations.connectors.base import BaseConnector, ConnectionTest, FieldInfo, Page
from integrations.connectors.entities import BastionGroup, BastionPerson
from integrations.connectors.ldap.changes import DirectoryChangesMixin
from integrations.connectors.ldap.connection import LdapConnectionMixin
from integrations.connectors.ldap.errors import _ldap_errors
from integrations.connectors.ldap.manifest import MANIFEST
from integrations.connectors.ldap.rules import disabled_by, repair_dn, rule_kind, rules_text, rules_validate
from integrations.connectors.ldap.schema import FLAVORS, IN_CHAIN_RULE, MAPPED_FIELDS, first_value, guid_to_str, normalize_dn, parse_schema_classes
from integrations.errors import ApiBadRequest, ApiNotFound
from integrations.ssrf import OutboundTarget

logger = logging.getLogger("integrations.connectors.ldap")  # the connector's one logger name, as before the package split


class LdapConnector(LdapConnectionMixin, DirectoryChangesMixin, BaseConnector):
    """Reads people and groups from Active Directory or any LDAPv3 directory (OpenLDAP inetOrgPerson)."""

    # A paged-search cookie lives on the connection parked in this process: elsewhere the search replays from the start.
    pages_bound_to_process = True

    manifest = MANIFEST
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
        object_classes = parse_schema_classes(definitions.get("objectClasses") or [])
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
            return self._read_groups(cursor=cursor, state=dict(page or {}))
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
        if not state and self._nothing_changed_since(cursor, mark):
            logger.info("ldap.incremental.unchanged", extra={"entity": "users"})
            return Page(records=[], next_page=None, cursor=None, is_full_scan=False, deleted_ids=[])
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
            value = first_value(root, ("highestCommittedUSN",))
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

    def _nothing_changed_since(self, cursor: Any, mark: Any) -> bool:
        """The server's change high-water mark (AD highestCommittedUSN, OpenLDAP contextCSN) still equals the last run's cursor:
        nothing was added, changed, moved or deleted since, so an incremental run reads nothing and scans nothing. Rules that
        read the clock (an expiry date) can exclude an account without any write, so with them every run reads."""
        if cursor in (None, "") or mark is None or str(mark) != str(cursor):
            return False
        return not any(rule_kind(rule) == "expires" for rule in self.disabled_rules)

    def _read_groups(self, *, cursor: Any, state: dict[str, Any]) -> Page:
        """Every group with its members' ids. Unless the directory is unchanged since the cursor (the high-water mark of the
        last run): then nothing is read. An incremental run that does read lists every group id it saw, so the store retires the rest."""
        if not state:
            mark = self._change_high_water()
            if self._nothing_changed_since(cursor, mark):
                logger.info("ldap.incremental.unchanged", extra={"entity": "groups"})
                return Page(records=[], next_page=None, cursor=None, is_full_scan=False)
            self._dn_ids = {}
            self._index_ids(self.base_dn)  # one paged scan instead of a lookup per member
        else:
            mark = state.get("mark")
        group_filter = str(self.config.get("group_filter") or self.flavor.group_filter)
        attributes = sorted({self.id_attribute, self.flavor.group_name, self.flavor.group_member, "objectClass", self.change_attribute})
        entries, next_state = self._paged(self.group_base_dn, group_filter, attributes, state)
        records = []
        for entry in entries:
            record = self._record(entry)
            member_dns = [m for m in record["attributes"].get(self.flavor.group_member, []) if isinstance(m, str)]
            record["members"] = [i for i in (self._resolve_id(dn, entry_dn=record["dn"], attribute=self.flavor.group_member) for dn in member_dns) if i]
            records.append(record)
        seen = [*state.get("seen", []), *(record["external_id"] for record in records)] if cursor not in (None, "") else []
        if next_state is not None:
            self._park()
            return Page(records=records, next_page={**next_state, "mark": mark, "seen": seen}, cursor=None, is_full_scan=True)
        new_cursor = str(mark) if mark is not None and str(mark) != str(cursor) else None
        return Page(records=records, next_page=None, cursor=new_cursor, is_full_scan=True, present_ids=seen if cursor not in (None, "") else None)

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
            external_id = first_value(attributes, (self.id_attribute,))
        if not external_id:
            raise ApiBadRequest(f"Entry {entry.get('dn')!r} has no {self.id_attribute}; check the service account can read it.")
        return {
            "dn": entry["dn"],
            "external_id": external_id,
            "attributes": attributes,
            "changed": first_value(attributes, (self.change_attribute,)),
            "is_disabled": disabled_by(self.disabled_rules, normalize_dn(entry["dn"]), attributes) is not None,
        }

    # ---------------------------------------------------------------- enrichment: manager ids, nested groups
    def _enrich(self, records: list[dict[str, Any]]) -> None:
        for record in records:
            manager_dn = first_value(record["attributes"], (self.flavor.manager,))
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
        return first_value(entry.get("attributes") or {}, (self.id_attribute,))

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
                        resolved = first_value(entries[0]["attributes"], (self.id_attribute,))
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
                    external_id = first_value(entry.get("attributes") or {}, (self.id_attribute,))
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
                name = first_value(attrs, (self.flavor.group_name,)) or entry["dn"]
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
            return BastionGroup(
                external_id=record["external_id"], name=first_value(attributes, (self.flavor.group_name,)), members=list(record.get("members") or [])
            )
        mapped = {name: first_value(attributes, attrs) for name, attrs in self.attribute_map.items()}
        name = mapped["name"] or f"{mapped['given_name']} {mapped['family_name']}".strip()
        return BastionPerson(
            external_id=record["external_id"],
            email=mapped["email"].lower(),
            name=name,
            given_name=mapped["given_name"],
            family_name=mapped["family_name"],
            title=mapped["title"],
            department=mapped["department"],
            phone=mapped["phone"],
            manager_external_id=record.get("manager_external_id") or "",
            groups=list(record.get("groups") or []),
            is_active=not record.get("is_disabled", False),
            username=mapped["username"],
        )

    def iter_all(self, entity: str, *, cursor: Any = None) -> Iterator[Page]:
        """Every page of one run (for scripts and benchmarks; the sync engine drives `read` itself)."""
        page = self.read(entity, cursor=cursor)
        yield page
        while page.next_page is not None:
            page = self.read(entity, cursor=cursor, page=page.next_page)
            yield page


CONNECTOR = LdapConnector
