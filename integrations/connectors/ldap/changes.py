"""Directory changes an incremental read cannot see (deletions, moves out of the base or filter) and the disabled-rules preview."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from typing import Any

import ldap3
from ldap3.core import exceptions as ldap_exc
from ldap3.utils.conv import escape_filter_chars

from integrations.connectors.ldap.rules import disabled_by, rule_label, rule_matches, rules_validate
from integrations.errors import ApiError

logger = logging.getLogger(__name__)

# reqStart narrows by second (indexed); the log entry's entryCSN (the change's CSN) excludes what the cursor already covers.
ACCESSLOG_CHANGES = (
    "(&(|(objectClass=auditDelete)(objectClass=auditModRDN)(objectClass=auditModify))(reqResult=0)(reqStart>={since})(entryCSN>={csn})(!(entryCSN={csn})))"
)


class DirectoryChangesMixin:
    """For LdapConnector: deletions within one incremental cycle (accesslog where readable, else an id-only scan) and rule previews."""

    # ---------------------------------------------------------------- deletions after an incremental run
    def incremental_removals(self, cursor: Any) -> tuple[list[str], list[str] | None, str]:
        """(deleted ids, ids present now or None, method) for the end of an incremental run.

        accesslog: deletes, moves and modifications since the cursor, read from OpenLDAP's accesslog database;
        scan: every entry's id under the base and filter (plus the disabled-rule attributes), so the store can retire the rest.
        """
        mode = self.deletion_detection
        if mode == "off":
            return [], None, "off"
        if mode in ("auto", "accesslog") and self.config.get("accesslog_base") and self.change_attribute.lower() == "entrycsn":
            try:
                return self._accesslog_removals(str(cursor)), None, "accesslog"
            except ApiError as error:
                if mode == "accesslog":
                    raise
                logger.warning("ldap.accesslog.unreadable", extra={"error": str(error)[:300]})
        return [], self._present_ids(), "scan"

    def _present_ids(self) -> list[str]:
        """Ids of the entries in scope now: one paged search returning only the id and the disabled-rule attributes."""
        conn = self.lookup_connection()
        base_filter = str(self.config.get("user_filter") or self.flavor.user_filter)
        attributes = sorted({self.id_attribute, *self._rule_attributes()})
        present: list[str] = []
        cookie: bytes | None = None
        now = datetime.now(UTC)
        while True:
            entries, cookie = self._search_page(conn, self.base_dn, base_filter, attributes, cookie)
            for entry in entries:
                external_id = self._entry_id(entry)
                if external_id and disabled_by(self.disabled_rules, self._dn_key(entry["dn"]), self._plain(entry), now) is None:
                    present.append(external_id)
            if not cookie:
                return present

    def _accesslog_removals(self, cursor: str) -> list[str]:
        """Ids deleted, moved out of the base, or modified out of the filter since the cursor (an entryCSN), from cn=accesslog."""
        since = re.match(r"\d{14}", cursor or "")
        if since is None:
            return []
        conn = self.lookup_connection()
        base_key = self._dn_key(self.base_dn)
        removed: list[str] = []
        modified: set[str] = set()
        cookie: bytes | None = None
        search_filter = ACCESSLOG_CHANGES.format(since=escape_filter_chars(since.group() + "Z"), csn=escape_filter_chars(cursor))
        attributes = ["objectClass", "reqDN", "reqOld", "reqNewRDN", "reqNewSuperior"]
        while True:
            entries, cookie = self._search_page(conn, str(self.config["accesslog_base"]), search_filter, attributes, cookie)
            for entry in entries:
                attrs = self._plain(entry)
                classes = {c.lower() for c in attrs.get("objectclass", [])}
                target = (attrs.get("reqdn") or [""])[0]
                if not self._under(self._dn_key(target), base_key):
                    continue
                if "auditdelete" in classes:
                    old_id = self._old_id(attrs.get("reqold") or [])
                    if old_id:
                        removed.append(old_id)
                elif "auditmodrdn" in classes:
                    parent = (attrs.get("reqnewsuperior") or [target.split(",", 1)[1] if "," in target else ""])[0]
                    new_dn = f"{(attrs.get('reqnewrdn') or [''])[0]},{parent}"
                    if not self._under(self._dn_key(new_dn), base_key):
                        removed.extend(i for i in [self._id_of(new_dn)] if i)
                    else:
                        modified.add(new_dn)
                else:
                    modified.add(target)
            if not cookie:
                break
        # A modified entry that no longer matches the user filter (or the rules) left the scope: one base search each.
        for dn in sorted(modified):
            if not self._in_scope(dn):
                removed.extend(i for i in [self._id_of(dn)] if i)
        return sorted(set(removed))

    def _in_scope(self, dn: str) -> bool:
        conn = self.lookup_connection()
        base_filter = str(self.config.get("user_filter") or self.flavor.user_filter)
        attributes = sorted({self.id_attribute, *self._rule_attributes()})
        try:
            conn.search(dn, base_filter, search_scope=ldap3.BASE, attributes=attributes)
        except ldap_exc.LDAPNoSuchObjectResult:
            return False
        entries = [e for e in conn.response if e.get("type") == "searchResEntry"]
        return bool(entries) and disabled_by(self.disabled_rules, self._dn_key(dn), self._plain(entries[0])) is None

    def _id_of(self, dn: str) -> str:
        conn = self.lookup_connection()
        try:
            conn.search(dn, "(objectClass=*)", search_scope=ldap3.BASE, attributes=[self.id_attribute])
        except ldap_exc.LDAPNoSuchObjectResult:
            return ""
        entries = [e for e in conn.response if e.get("type") == "searchResEntry"]
        return self._entry_id(entries[0]) if entries else ""

    def _old_id(self, old_values: list[str]) -> str:
        prefix = f"{self.id_attribute.lower()}:"
        for line in old_values:
            if str(line).lower().startswith(prefix):
                return str(line).split(":", 1)[1].strip()
        return ""

    # ---------------------------------------------------------------- disabled rules preview
    def disabled_rules_preview(self, rules: Any) -> dict[str, Any]:
        """How many entries in scope each rule would exclude (and all together), read before the rules are saved."""
        checked = rules_validate(rules) or tuple(self.flavor.disabled_rules)
        conn = self.lookup_connection()
        base_filter = str(self.config.get("user_filter") or self.flavor.user_filter)
        attributes = sorted({self.id_attribute, *(str(r["attribute"]) for r in checked if r.get("attribute"))})
        counts = [0] * len(checked)
        entries_total = excluded = 0
        now = datetime.now(UTC)
        cookie: bytes | None = None
        while True:
            entries, cookie = self._search_page(conn, self.base_dn, base_filter, attributes, cookie)
            for entry in entries:
                entries_total += 1
                lowered = self._plain(entry)
                key = self._dn_key(entry["dn"])
                hits = [position for position, rule in enumerate(checked) if rule_matches(rule, key, lowered, now)]
                for position in hits:
                    counts[position] += 1
                excluded += bool(hits)
            if not cookie:
                break
        return {
            "entries": entries_total,
            "excluded": excluded,
            "rules": [{"rule": dict(rule), "label": rule_label(rule), "excluded": counts[position]} for position, rule in enumerate(checked)],
        }

    # ---------------------------------------------------------------- helpers
    @staticmethod
    def _plain(entry: dict[str, Any]) -> dict[str, list[Any]]:
        """Attributes keyed lower-case, values as lists of strings."""
        plain: dict[str, list[Any]] = {}
        for name, values in (entry.get("attributes") or {}).items():
            values = values if isinstance(values, list) else [values]
            plain[name.lower()] = [v if isinstance(v, str) else str(v) for v in values if not isinstance(v, bytes)]
        return plain

    @staticmethod
    def _under(key: str, base_key: str) -> bool:
        return key == base_key or key.endswith("\x1f" + base_key)
