"""Directory conventions for "this account is disabled" (OU, attribute value or prefix, AD bits, expiry) and DN repair."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from ldap3.core import exceptions as ldap_exc
from ldap3.utils.dn import parse_dn

from integrations.connectors.ldap.schema import normalize_dn
from integrations.errors import ApiBadRequest

FILETIME_EPOCH_OFFSET = 116_444_736_000_000_000  # 100 ns intervals from 1601-01-01 to 1970-01-01
FILETIME_NEVER = (0, 0x7FFFFFFFFFFFFFFF)  # AD accountExpires: "never expires"
RULE_KINDS = ("present", "values", "prefix", "contains", "bitmask", "under", "expires")


def _lower_key(rule: Mapping[str, Any]) -> str:
    return str(rule.get("attribute") or "").strip()


def rule_kind(rule: Mapping[str, Any]) -> str:
    """Which convention a rule expresses (the first of RULE_KINDS it sets)."""
    for kind in RULE_KINDS:
        if rule.get(kind) not in (None, "", [], False):
            return kind
    return ""


TEXT_RULES = (
    (re.compile(r"^(the\s+entry\s+is\s+)?under\s+(?P<value>.+)$", re.I), lambda m: {"under": m["value"].strip()}),
    (re.compile(r"^(?P<attr>[\w-]+)\s+starts\s+with\s+(?P<value>.+)$", re.I), lambda m: {"attribute": m["attr"], "prefix": _unquote(m["value"])}),
    (re.compile(r"^(?P<attr>[\w-]+)\s+contains\s+(?P<value>.+)$", re.I), lambda m: {"attribute": m["attr"], "contains": _unquote(m["value"])}),
    (re.compile(r"^(?P<attr>[\w-]+)\s+is\s+set$", re.I), lambda m: {"attribute": m["attr"], "present": True}),
    (re.compile(r"^(?P<attr>[\w-]+)\s+has\s+bit\s+(?P<value>\d+)(\s+set)?$", re.I), lambda m: {"attribute": m["attr"], "bitmask": int(m["value"])}),
    (re.compile(r"^(?P<attr>[\w-]+)\s+is\s+in\s+the\s+past$", re.I), lambda m: {"attribute": m["attr"], "expires": True}),
    (
        re.compile(r"^(?P<attr>[\w-]+)\s+is\s+(one\s+of\s+)?(?P<value>.+)$", re.I),
        lambda m: {"attribute": m["attr"], "values": [_unquote(v) for v in m["value"].split(",") if v.strip()]},
    ),
)
TEXT_HELP = (
    "One rule per line (or separated by ;), each read as written: under ou=Disabled · description starts with Account disabled · "
    "userAccountControl has bit 2 · accountExpires is in the past · nsAccountLock is true · pwdAccountLockedTime is set"
)


def _unquote(value: str) -> str:
    value = value.strip()
    return value[1:-1] if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"" else value


def rules_from_text(text: str) -> list[dict[str, Any]]:
    """The settings page's wording of rules (rule_label's phrases) as rule objects; a line that reads as none is a 400."""
    rules = []
    for line in (part.strip() for part in re.split(r"[\n;]", text)):
        if not line:
            continue
        for pattern, build in TEXT_RULES:
            match = pattern.match(line)
            if match:
                rules.append(build(match))
                break
        else:
            raise ApiBadRequest(f"Disabled rule {line!r} reads as none of the forms: {TEXT_HELP}.")
    return rules


def rules_text(rules: Any) -> str:
    """Rules as the settings page shows them (one per line, the same wording rules_from_text reads)."""
    if isinstance(rules, str):
        return rules
    return "\n".join(rule_label(rule) for rule in rules_validate(rules))


def rules_validate(rules: Any) -> tuple[dict[str, Any], ...]:
    """Check the disabled-account rules from the integration's settings (objects, or the page's wording); raise ApiBadRequest naming the bad rule."""
    if rules in (None, ""):
        return ()
    if isinstance(rules, str):
        rules = rules_from_text(rules)
    if not isinstance(rules, list | tuple):
        raise ApiBadRequest("disabled_rules must be a list of rules.")
    cleaned = []
    for position, rule in enumerate(rules, start=1):
        if not isinstance(rule, Mapping):
            raise ApiBadRequest(f"Disabled rule {position} must be an object.")
        kind = rule_kind(rule)
        if not kind:
            raise ApiBadRequest(f"Disabled rule {position} sets none of {', '.join(RULE_KINDS)}.")
        if kind != "under" and not _lower_key(rule):
            raise ApiBadRequest(f"Disabled rule {position} ({kind}) needs the attribute it reads.")
        if kind == "bitmask":
            try:
                int(rule["bitmask"])
            except (TypeError, ValueError):
                raise ApiBadRequest(f"Disabled rule {position}: bitmask must be an integer (AD's ACCOUNTDISABLE is 2).") from None
        if kind == "values" and not isinstance(rule["values"], list | tuple):
            raise ApiBadRequest(f"Disabled rule {position}: values must be a list.")
        if kind == "under" and repair_dn(str(rule["under"])) is None and not _is_rdn(str(rule["under"])):
            raise ApiBadRequest(f"Disabled rule {position}: {rule['under']!r} is neither a DN nor an RDN such as ou=Disabled.")
        cleaned.append(dict(rule))
    return tuple(cleaned)


def _is_rdn(value: str) -> bool:
    return bool(re.fullmatch(r"\s*[A-Za-z][\w-]*\s*=\s*[^,]+", value))


def rule_label(rule: Mapping[str, Any]) -> str:
    """How a rule reads in the settings preview."""
    kind, attribute = rule_kind(rule), _lower_key(rule)
    if kind == "present":
        return f"{attribute} is set"
    if kind == "values":
        return f"{attribute} is {', '.join(map(str, rule['values']))}"
    if kind == "prefix":
        return f"{attribute} starts with {rule['prefix']!r}"
    if kind == "contains":
        return f"{attribute} contains {rule['contains']!r}"
    if kind == "bitmask":
        return f"{attribute} has bit {int(rule['bitmask'])} set"
    if kind == "under":
        return f"the entry is under {rule['under']}"
    return f"{attribute} is in the past"


def _expired(value: str, now: datetime) -> bool:
    text = str(value).strip()
    if text.lstrip("-").isdigit():
        number = int(text)
        if number in FILETIME_NEVER or number < 0:
            return False
        if number > 10**12:  # AD FILETIME
            return (number - FILETIME_EPOCH_OFFSET) / 10_000_000 < now.timestamp()
        return number * 86_400 < now.timestamp()  # shadowExpire: days since 1970
    match = re.fullmatch(r"(\d{14})(?:[.,]\d+)?Z", text)  # generalized time (pwdEndTime, accountExpires as text)
    if match:
        return datetime.strptime(match.group(1), "%Y%m%d%H%M%S").replace(tzinfo=UTC) < now
    return False


def rule_matches(rule: Mapping[str, Any], dn_key: str, lowered: Mapping[str, list[Any]], now: datetime) -> bool:
    """Whether one entry (normalized DN key, attributes keyed lower-case) is disabled under `rule`."""
    kind = rule_kind(rule)
    values = [str(v) for v in lowered.get(_lower_key(rule).lower()) or [] if v not in (None, "")]
    if kind == "present":
        return bool(values)
    if kind == "values":
        return bool({v.lower() for v in values} & {str(v).lower() for v in rule["values"]})
    if kind == "prefix":
        prefix = str(rule["prefix"]).lower()
        return any(v.lower().startswith(prefix) for v in values)
    if kind == "contains":
        needle = str(rule["contains"]).lower()
        return any(needle in v.lower() for v in values)
    if kind == "bitmask":
        mask = int(rule["bitmask"])
        return any(v.lstrip("-").isdigit() and int(v) & mask for v in values)
    if kind == "under":
        return _dn_under(dn_key, str(rule["under"]))
    if kind == "expires":
        return any(_expired(v, now) for v in values)
    return False


def _dn_under(dn_key: str, where: str) -> bool:
    """An RDN (ou=Disabled) matches at any level above the entry; a full DN matches as an ancestor."""
    parts = dn_key.split("\x1f")
    target = normalize_dn(repair_dn(where) or where)
    if "\x1f" not in target:
        return target in parts[1:]
    return dn_key.endswith("\x1f" + target)


def disabled_by(rules: tuple[Mapping[str, Any], ...], dn_key: str, attributes: Mapping[str, list[Any]], now: datetime | None = None) -> int | None:
    """Index of the first rule that marks the entry disabled, or None."""
    lowered = {k.lower(): v for k, v in attributes.items()}
    moment = now or datetime.now(UTC)
    for position, rule in enumerate(rules):
        if rule_matches(rule, dn_key, lowered, moment):
            return position
    return None


# ---------------------------------------------------------------- DN repair


def _split_unescaped(text: str, separators: str) -> list[str]:
    """Split on separators that are neither escaped with a backslash nor inside double quotes."""
    parts, current, escaped, quoted = [], [], False, False
    for char in text:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            current.append(char)
            escaped = True
        elif char == '"':
            current.append(char)
            quoted = not quoted
        elif char in separators and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _strip_value(value: str) -> str:
    """Strip unescaped padding (a trailing `\\ ` is an escaped space and stays)."""
    stripped = value.lstrip()
    while stripped.endswith(" ") and not stripped.endswith("\\ "):
        stripped = stripped[:-1]
    return stripped


def repair_dn(dn: str) -> str | None:
    """An RFC 4514 form of a DN written loosely (`CN=Doe, OU=People` with spaces around separators, `;` separators); None if hopeless."""
    try:
        parse_dn(dn, escape=False, strip=False)
        return dn
    except (ldap_exc.LDAPInvalidDnError, ValueError, TypeError, IndexError):
        pass
    rdns = []
    for rdn in _split_unescaped(dn.strip(), ",;"):
        avas = []
        for ava in _split_unescaped(rdn, "+"):
            attribute, sep, value = ava.partition("=")
            if not sep or not attribute.strip():
                return None
            avas.append(f"{attribute.strip()}={_strip_value(value)}")
        rdns.append("+".join(avas))
    repaired = ",".join(rdns)
    try:
        parse_dn(repaired, escape=False, strip=False)
    except (ldap_exc.LDAPInvalidDnError, ValueError, TypeError, IndexError):
        return None
    return repaired
