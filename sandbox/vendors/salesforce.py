"""Salesforce REST stand-in: OAuth with instance_url, SOQL query/queryAll with query locators, describe, sObject CRUD/upsert, daily API limit."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from sandbox.oauth import OAuthProfile, bearer_token, oauth_blueprint
from sandbox.state import STORE
from sandbox.vendors._people import people

VENDOR = "salesforce"
ORG_ID = "00D5g000004ACMEEA2"
DAILY_LIMIT = 15000
VERSIONS = [f"{n}.0" for n in range(31, 63)]
ID_PREFIX = {"Account": "001", "Contact": "003", "User": "005", "Opportunity": "006", "Task": "00T"}
REQUIRED = {"Account": ["Name"], "Contact": ["LastName"], "Opportunity": ["Name", "StageName", "CloseDate"], "Task": []}
STAGES = [
    "Prospecting",
    "Qualification",
    "Needs Analysis",
    "Value Proposition",
    "Id. Decision Makers",
    "Perception Analysis",
    "Proposal/Price Quote",
    "Negotiation/Review",
    "Closed Won",
    "Closed Lost",
]


def _f(
    name: str,
    type_: str,
    label: str = "",
    *,
    custom: bool = False,
    ref: str = "",
    create: bool = True,
    external: bool = False,
    picklist: list[str] | None = None,
) -> dict:
    return {
        "name": name,
        "label": label or name.replace("__c", "").replace("_", " "),
        "type": type_,
        "custom": custom,
        "nillable": name != "Id" and type_ != "boolean",
        "createable": create,
        "updateable": create,
        "externalId": external,
        "unique": external,
        "idLookup": external or name == "Id",
        "length": 255 if type_ in ("string", "email", "phone", "picklist", "url") else (32768 if type_ == "textarea" else 0),
        "referenceTo": [ref] if ref else [],
        "relationshipName": (name[:-2] if name.endswith("Id") else None) if ref else None,
        "picklistValues": [{"active": True, "defaultValue": False, "label": v, "value": v} for v in picklist or []],
        "calculated": False,
        "filterable": True,
        "sortable": type_ != "textarea",
    }


def _system_fields() -> list[dict]:
    return [
        _f("Id", "id", "Record ID", create=False),
        _f("IsDeleted", "boolean", "Deleted", create=False),
        _f("CreatedDate", "datetime", "Created Date", create=False),
        _f("LastModifiedDate", "datetime", "Last Modified Date", create=False),
        _f("SystemModstamp", "datetime", "System Modstamp", create=False),
    ]


SCHEMA: dict[str, list[dict]] = {
    "User": _system_fields()
    + [
        _f("Username", "string"),
        _f("Email", "email"),
        _f("FirstName", "string", "First Name"),
        _f("LastName", "string", "Last Name"),
        _f("Name", "string", "Full Name", create=False),
        _f("Title", "string"),
        _f("Department", "string"),
        _f("Phone", "phone"),
        _f("ManagerId", "reference", "Manager ID", ref="User"),
        _f("IsActive", "boolean", "Active"),
        _f("UserType", "picklist", "User Type", create=False, picklist=["Standard", "AutomatedProcess"]),
    ],
    "Account": _system_fields()
    + [
        _f("Name", "string", "Account Name"),
        _f("Industry", "picklist", picklist=["Technology", "Finance", "Biotechnology", "Transportation"]),
        _f("Website", "url"),
        _f("OwnerId", "reference", "Owner ID", ref="User"),
    ],
    "Contact": _system_fields()
    + [
        _f("FirstName", "string", "First Name"),
        _f("LastName", "string", "Last Name"),
        _f("Name", "string", "Full Name", create=False),
        _f("Email", "email"),
        _f("Title", "string"),
        _f("Department", "string"),
        _f("Phone", "phone"),
        _f("AccountId", "reference", "Account ID", ref="Account"),
        _f("ReportsToId", "reference", "Reports To ID", ref="Contact"),
        _f("OwnerId", "reference", "Owner ID", ref="User"),
    ],
    "Opportunity": _system_fields()
    + [
        _f("Name", "string", "Opportunity Name"),
        _f("Amount", "currency"),
        _f("CloseDate", "date", "Close Date"),
        _f("StageName", "picklist", "Stage", picklist=STAGES),
        _f("Probability", "percent", "Probability (%)"),
        _f("Type", "picklist", picklist=["New Business", "Existing Business", "M&A"]),
        _f("IsClosed", "boolean", "Closed", create=False),
        _f("IsWon", "boolean", "Won", create=False),
        _f("AccountId", "reference", "Account ID", ref="Account"),
        _f("OwnerId", "reference", "Owner ID", ref="User"),
        _f("Description", "textarea"),
        _f("Team__c", "textarea", "Deal team (emails)", custom=True),
        _f("Deal_Type__c", "picklist", "Deal type", custom=True, picklist=["New Business", "Renewal", "Acquisition"]),
        _f("Bastion_Key__c", "string", "Bastion key", custom=True, external=True),
    ],
    "Task": _system_fields()
    + [
        _f("Subject", "string"),
        _f("Description", "textarea", "Comments"),
        _f("Status", "picklist", picklist=["Not Started", "In Progress", "Completed"]),
        _f("Priority", "picklist", picklist=["High", "Normal", "Low"]),
        _f("ActivityDate", "date", "Due Date"),
        _f("WhatId", "reference", "Related To ID", ref="Opportunity"),
        _f("WhoId", "reference", "Name ID", ref="Contact"),
        _f("OwnerId", "reference", "Assigned To ID", ref="User"),
        _f("Bastion_Key__c", "string", "Bastion key", custom=True, external=True),
    ],
}
LABELS = {"User": "User", "Account": "Account", "Contact": "Contact", "Opportunity": "Opportunity", "Task": "Task"}


class SoqlError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


# ---------------------------------------------------------------- helpers


def _sf_datetime(ts: float) -> str:
    stamp = datetime.fromtimestamp(ts, tz=UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}+0000"


def _parse_datetime(text: str) -> float:
    text = text.strip()
    text = re.sub(r"([+-]\d{2})(\d{2})$", r"\1:\2", text.replace("Z", "+00:00"))
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def _errors(status: int, code: str, message: str, fields: list[str] | None = None) -> Response:
    body: dict[str, Any] = {"message": message, "errorCode": code}
    if fields is not None:
        body["fields"] = fields
    response = jsonify([body])
    response.status_code = status
    return response


def _rate_limited(retry_after: int) -> Response:
    # Salesforce has no 429: concurrent-request and daily limits both answer 403 REQUEST_LIMIT_EXCEEDED.
    return _errors(403, "REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded.")


def _settings() -> dict[str, Any]:
    return STORE.collection(VENDOR, "_settings")  # type: ignore[return-value]


def _table(sobject: str):
    return STORE.collection(VENDOR, sobject)


def _field(sobject: str, name: str) -> dict | None:
    for definition in SCHEMA.get(sobject, []):
        if definition["name"].lower() == name.lower():
            return definition
    return None


def _new_id(sobject: str) -> str:
    return f"{ID_PREFIX[sobject]}5g{STORE.next_id():010d}AAI"


def _insert(sobject: str, values: dict[str, Any], stamp: float | None = None) -> dict:
    stamp = stamp or time.time()
    record = {d["name"]: None for d in SCHEMA[sobject]}
    record.update(values)
    record.setdefault("Id", None)
    record["Id"] = record["Id"] or _new_id(sobject)
    record["IsDeleted"] = False
    record["CreatedDate"] = record["LastModifiedDate"] = record["SystemModstamp"] = _sf_datetime(stamp)
    _derive(sobject, record)
    _table(sobject)[record["Id"]] = record
    return record


def _derive(sobject: str, record: dict) -> None:
    if "Name" in record and sobject in ("User", "Contact"):
        record["Name"] = " ".join(p for p in (record.get("FirstName"), record.get("LastName")) if p)
    if sobject == "Opportunity":
        stage = record.get("StageName") or ""
        record["IsClosed"] = stage.startswith("Closed")
        record["IsWon"] = stage == "Closed Won"


def _touch(sobject: str, record: dict) -> None:
    record["LastModifiedDate"] = record["SystemModstamp"] = _sf_datetime(time.time())
    _derive(sobject, record)


def _sobject(name: str) -> str | None:
    for known in SCHEMA:
        if known.lower() == name.lower():
            return known
    return None


# ---------------------------------------------------------------- SOQL (the subset Bastion and tests use)

TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^'\\]|\\.)*')|(?P<dt>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))|(?P<date>\d{4}-\d{2}-\d{2})"
    r"|(?P<num>-?\d+(?:\.\d+)?)|(?P<op><=|>=|!=|<>|=|<|>)|(?P<punct>[(),])|(?P<ident>[A-Za-z_][A-Za-z0-9_.]*))"
)


def _tokens(soql: str) -> list[tuple[str, str]]:
    out, position = [], 0
    soql = soql.strip()
    while position < len(soql):
        match = TOKEN.match(soql, position)
        if not match or match.end() == position:
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{soql[position : position + 20]}'")
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind)))
        position = match.end()
        while position < len(soql) and soql[position].isspace():
            position += 1
    return out


class _Parser:
    def __init__(self, soql: str):
        self.soql = soql
        self.items = _tokens(soql)
        self.i = 0

    def peek(self, word: str | None = None) -> bool:
        if self.i >= len(self.items):
            return False
        return word is None or self.items[self.i][1].upper() == word

    def take(self, word: str | None = None) -> tuple[str, str]:
        if self.i >= len(self.items) or (word and self.items[self.i][1].upper() != word):
            raise SoqlError("MALFORMED_QUERY", f"expecting '{word or 'more'}' in: {self.soql}")
        self.i += 1
        return self.items[self.i - 1]

    def parse(self) -> dict:
        self.take("SELECT")
        fields = [self.take()[1]]
        while self.peek(","):
            self.take(",")
            fields.append(self.take()[1])
        self.take("FROM")
        sobject = self.take()[1]
        query: dict[str, Any] = {"fields": fields, "sobject": sobject, "where": None, "order": [], "limit": None, "offset": 0}
        if self.peek("WHERE"):
            self.take("WHERE")
            query["where"] = self.or_expr()
        if self.peek("ORDER"):
            self.take("ORDER")
            self.take("BY")
            while True:
                field = self.take()[1]
                direction = "ASC"
                if self.peek("ASC") or self.peek("DESC"):
                    direction = self.take()[1].upper()
                query["order"].append((field, direction))
                if not self.peek(","):
                    break
                self.take(",")
        if self.peek("LIMIT"):
            self.take("LIMIT")
            query["limit"] = int(self.take()[1])
        if self.peek("OFFSET"):
            self.take("OFFSET")
            query["offset"] = int(self.take()[1])
        if self.i != len(self.items):
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{self.items[self.i][1]}'")
        return query

    def or_expr(self) -> tuple:
        node = self.and_expr()
        while self.peek("OR"):
            self.take("OR")
            node = ("or", node, self.and_expr())
        return node

    def and_expr(self) -> tuple:
        node = self.atom()
        while self.peek("AND"):
            self.take("AND")
            node = ("and", node, self.atom())
        return node

    def atom(self) -> tuple:
        if self.peek("("):
            self.take("(")
            node = self.or_expr()
            self.take(")")
            return node
        if self.peek("NOT"):
            self.take("NOT")
            return ("not", self.atom())
        field = self.take()[1]
        if self.peek("IN") or self.peek("NOT"):
            negate = self.take()[1].upper() == "NOT"
            if negate:
                self.take("IN")
            self.take("(")
            values = [self.value()]
            while self.peek(","):
                self.take(",")
                values.append(self.value())
            self.take(")")
            return ("in", field, values, negate)
        if self.peek("LIKE"):
            self.take("LIKE")
            return ("like", field, self.value())
        kind, operator = self.take()
        if kind != "op":
            raise SoqlError("MALFORMED_QUERY", f"expecting a comparison operator after {field}")
        return ("cmp", field, operator, self.value())

    def value(self) -> tuple[str, Any]:
        kind, text = self.take()
        if kind == "str":
            return ("str", re.sub(r"\\(.)", r"\1", text[1:-1]))
        if kind == "dt":
            return ("dt", _parse_datetime(text))
        if kind == "date":
            return ("date", text)
        if kind == "num":
            return ("num", float(text))
        if text.upper() in ("TRUE", "FALSE"):
            return ("bool", text.upper() == "TRUE")
        if text.upper() == "NULL":
            return ("null", None)
        raise SoqlError("MALFORMED_QUERY", f"unexpected value: {text}")


def _resolve(sobject: str, record: dict, path: str) -> Any:
    """Field value, following one relationship hop (Owner.Email, Account.Name)."""
    if "." not in path:
        definition = _field(sobject, path)
        if not definition:
            raise SoqlError(
                "INVALID_FIELD",
                f"No such column '{path}' on entity '{sobject}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name.",
            )
        return record.get(definition["name"])
    relationship, _, rest = path.partition(".")
    reference = next((d for d in SCHEMA[sobject] if d["relationshipName"] and d["relationshipName"].lower() == relationship.lower()), None)
    if not reference:
        raise SoqlError(
            "INVALID_FIELD",
            f"Didn't understand relationship '{relationship}' in field path. If you are attempting to use a custom relationship, be sure to append the '__r'.",
        )
    target = reference["referenceTo"][0]
    related = _table(target).get(record.get(reference["name"]) or "")
    if not _field(target, rest):
        raise SoqlError("INVALID_FIELD", f"No such column '{rest}' on entity '{target}'.")
    return related.get(_field(target, rest)["name"]) if related else None


def _compare(sobject: str, record: dict, field: str, operator: str, value: tuple[str, Any]) -> bool:
    actual = _resolve(sobject, record, field)
    kind, expected = value
    if kind == "null":
        return (actual is None) == (operator == "=") if operator in ("=", "!=", "<>") else False
    if actual is None:
        return operator in ("!=", "<>")
    if kind == "dt":
        left: Any = _parse_datetime(actual)
    elif kind == "num":
        left = float(actual)
    elif kind == "bool":
        left = bool(actual)
    elif kind == "str":
        left, expected = str(actual).lower(), str(expected).lower()  # SOQL string equality is case-insensitive
    else:
        left = str(actual)
    return {
        "=": left == expected,
        "!=": left != expected,
        "<>": left != expected,
        "<": left < expected,
        "<=": left <= expected,
        ">": left > expected,
        ">=": left >= expected,
    }[operator]


def _evaluate(sobject: str, record: dict, node: tuple | None) -> bool:
    if node is None:
        return True
    kind = node[0]
    if kind == "and":
        return _evaluate(sobject, record, node[1]) and _evaluate(sobject, record, node[2])
    if kind == "or":
        return _evaluate(sobject, record, node[1]) or _evaluate(sobject, record, node[2])
    if kind == "not":
        return not _evaluate(sobject, record, node[1])
    if kind == "in":
        _, field, values, negate = node
        hit = any(_compare(sobject, record, field, "=", v) for v in values)
        return hit != negate
    if kind == "like":
        pattern = "^" + re.escape(str(node[2][1])).replace("%", ".*").replace("_", ".") + "$"
        return bool(re.match(pattern, str(_resolve(sobject, record, node[1]) or ""), re.IGNORECASE))
    return _compare(sobject, record, node[1], node[2], node[3])


def _render(sobject: str, record: dict, fields: list[str], version: str) -> dict:
    out: dict[str, Any] = {"attributes": {"type": sobject, "url": f"/services/data/v{version}/sobjects/{sobject}/{record['Id']}"}}
    for path in fields:
        if "." not in path:
            out[_field(sobject, path)["name"]] = record.get(_field(sobject, path)["name"])
            continue
        relationship, _, rest = path.partition(".")
        reference = next(d for d in SCHEMA[sobject] if d["relationshipName"] and d["relationshipName"].lower() == relationship.lower())
        target = reference["referenceTo"][0]
        related = _table(target).get(record.get(reference["name"]) or "")
        key = reference["relationshipName"]
        if not related:
            out[key] = None
            continue
        nested = out.get(key) or {"attributes": {"type": target, "url": f"/services/data/v{version}/sobjects/{target}/{related['Id']}"}}
        nested[_field(target, rest)["name"]] = related.get(_field(target, rest)["name"])
        out[key] = nested
    return out


def run_soql(soql: str, *, include_deleted: bool, version: str) -> list[dict]:
    query = _Parser(soql).parse()
    sobject = _sobject(query["sobject"])
    if not sobject:
        raise SoqlError("INVALID_TYPE", f"sObject type '{query['sobject']}' is not supported.")
    for path in query["fields"] + [f for f, _ in query["order"]]:
        _resolve(sobject, {}, path) if "." not in path else None  # validate names even on empty tables
    with STORE.lock:
        rows = [r for r in _table(sobject).values() if (include_deleted or not r["IsDeleted"]) and _evaluate(sobject, r, query["where"])]
        for field, direction in reversed(query["order"]):
            rows.sort(key=lambda r, f=field: (_resolve(sobject, r, f) is None, str(_resolve(sobject, r, f) or "")), reverse=direction == "DESC")
        rows = rows[query["offset"] :]
        if query["limit"] is not None:
            rows = rows[: query["limit"]]
        return [_render(sobject, r, query["fields"], version) for r in rows]


# ---------------------------------------------------------------- seed


def seed() -> None:
    """The 20 shared people as Users, five Accounts, six external Contacts and a dozen Opportunities (one over $10M)."""
    base = datetime(2025, 1, 6, 9, 0, tzinfo=UTC).timestamp()
    hour = 3600.0
    staff = people()
    user_ids: dict[str, str] = {}
    for person in staff:
        user_ids[person["email"]] = f"0055g00000{person['index'] + 1:05d}AAA"
    for person in staff:
        _insert(
            "User",
            {
                "Id": user_ids[person["email"]],
                "Username": person["email"],
                "Email": person["email"],
                "FirstName": person["given_name"],
                "LastName": person["family_name"],
                "Name": person["name"],
                "Title": person["title"],
                "Department": person["department"],
                "Phone": f"+1 415 555 02{person['index']:02d}",
                "ManagerId": user_ids.get(person["manager_email"]),
                "IsActive": True,
                "UserType": "Standard",
            },
            base + person["index"] * 60,
        )
    accounts = {}
    for index, (name, industry, site) in enumerate(
        [
            ("Northwind Analytics", "Technology", "https://northwind.example"),
            ("Globex Holdings", "Finance", "https://globex.example"),
            ("Initech", "Technology", "https://initech.example"),
            ("Umbrella Labs", "Biotechnology", "https://umbrella.example"),
            ("Stark Logistics", "Transportation", "https://stark-logistics.example"),
        ]
    ):
        accounts[name] = _insert(
            "Account",
            {"Id": f"0015g00000{index + 1:05d}AAA", "Name": name, "Industry": industry, "Website": site, "OwnerId": user_ids["mateo.lopez@acme.example"]},
            base + hour + index * 60,
        )["Id"]
    for index, (first, last, email, title, account) in enumerate(
        [
            ("Elena", "Park", "elena.park@northwind.example", "Chief Executive Officer", "Northwind Analytics"),
            ("Victor", "Hale", "victor.hale@northwind.example", "Chief Financial Officer", "Northwind Analytics"),
            ("Rosa", "Ibarra", "rosa.ibarra@globex.example", "VP Procurement", "Globex Holdings"),
            ("Peter", "Gibbons", "peter.gibbons@initech.example", "Director of Operations", "Initech"),
            ("Alice", "Wong", "alice.wong@umbrella.example", "CISO", "Umbrella Labs"),
            ("Tony", "Reyes", "", "Fleet Manager", "Stark Logistics"),
        ]
    ):
        _insert(
            "Contact",
            {
                "Id": f"0035g00000{index + 1:05d}AAA",
                "FirstName": first,
                "LastName": last,
                "Email": email or None,
                "Title": title,
                "Department": "Executive" if "Chief" in title else "Operations",
                "AccountId": accounts[account],
                "OwnerId": user_ids["mateo.lopez@acme.example"],
            },
            base + 2 * hour + index * 60,
        )
    opportunities = [
        (
            "Project Falcon: acquisition of Northwind Analytics",
            12500000,
            "2025-09-30",
            "Negotiation/Review",
            "ava.chen@acme.example",
            "Northwind Analytics",
            "Acquisition",
            "ava.chen@acme.example;grace.obrien@acme.example;priya.raman@acme.example;mateo.lopez@acme.example",
        ),
        (
            "Globex platform expansion",
            480000,
            "2025-06-30",
            "Proposal/Price Quote",
            "mateo.lopez@acme.example",
            "Globex Holdings",
            "New Business",
            "mateo.lopez@acme.example;lucas.silva@acme.example",
        ),
        ("Initech renewal FY25", 125000, "2025-04-15", "Closed Won", "mateo.lopez@acme.example", "Initech", "Renewal", "daniel.kim@acme.example"),
        (
            "Umbrella Labs security suite",
            260000,
            "2025-07-31",
            "Qualification",
            "daniel.kim@acme.example",
            "Umbrella Labs",
            "New Business",
            "marcus.okafor@acme.example, mateo.lopez@acme.example",
        ),
        ("Stark Logistics pilot", 45000, "2025-03-31", "Closed Lost", "daniel.kim@acme.example", "Stark Logistics", "New Business", "daniel.kim@acme.example"),
        (
            "Northwind data licensing",
            90000,
            "2025-05-30",
            "Prospecting",
            "mateo.lopez@acme.example",
            "Northwind Analytics",
            "New Business",
            "isabel.costa@acme.example",
        ),
        (
            "Globex support renewal",
            150000,
            "2025-08-31",
            "Perception Analysis",
            "mateo.lopez@acme.example",
            "Globex Holdings",
            "Renewal",
            "daniel.kim@acme.example;grace.obrien@acme.example",
        ),
        (
            "Initech analytics add-on",
            70000,
            "2025-06-15",
            "Needs Analysis",
            "isabel.costa@acme.example",
            "Initech",
            "New Business",
            "isabel.costa@acme.example",
        ),
        (
            "Umbrella Labs EU rollout",
            610000,
            "2025-10-31",
            "Value Proposition",
            "grace.obrien@acme.example",
            "Umbrella Labs",
            "New Business",
            "sofia.garcia@acme.example;zara.ahmed@acme.example",
        ),
        (
            "Stark Logistics fleet tracking",
            330000,
            "2025-11-30",
            "Negotiation/Review",
            "mateo.lopez@acme.example",
            "Stark Logistics",
            "New Business",
            "mateo.lopez@acme.example;noah.fischer@acme.example",
        ),
        (
            "Project Heron: minority stake in Initech",
            4200000,
            "2025-12-15",
            "Id. Decision Makers",
            "grace.obrien@acme.example",
            "Initech",
            "Acquisition",
            "grace.obrien@acme.example;priya.raman@acme.example;ava.chen@acme.example",
        ),
        (
            "Northwind training services",
            38000,
            "2025-02-28",
            "Closed Won",
            "isabel.costa@acme.example",
            "Northwind Analytics",
            "Renewal",
            "hannah.muller@acme.example",
        ),
    ]
    for index, (name, amount, close, stage, owner, account, deal_type, team) in enumerate(opportunities):
        _insert(
            "Opportunity",
            {
                "Id": f"0065g00000{index + 1:05d}AAA",
                "Name": name,
                "Amount": float(amount),
                "CloseDate": close,
                "StageName": stage,
                "Probability": 90.0 if stage.startswith("Negotiation") else (100.0 if stage == "Closed Won" else 20.0),
                "Type": "M&A" if deal_type == "Acquisition" else "New Business",
                "AccountId": accounts[account],
                "OwnerId": user_ids[owner],
                "Team__c": team,
                "Deal_Type__c": deal_type,
            },
            base + 3 * hour + index * 60,
        )
    settings = _settings()
    settings["fail_after_create_next"] = 0
    STORE.collection(VENDOR, "_usage")["used"] = 0


# ---------------------------------------------------------------- API


def _check_auth() -> Response | None:
    if not _token_grant():
        return _errors(401, "INVALID_SESSION_ID", "Session expired or invalid")
    return None


def _token_grant() -> dict | None:
    token = bearer_token()
    with STORE.lock:
        info = STORE.tokens.get(token or "")
        if not info or info["vendor"] != VENDOR or STORE.faults_for(VENDOR).revoked:
            return None
        if info["expires_at"] is not None and info["expires_at"] < time.time():
            return None
        return dict(info)


def _with_salesforce_fields(response: Response) -> Response:
    """Token responses carry instance_url (back to this stand-in), the identity URL, issued_at and its signature; no expires_in."""
    body = response.get_json(silent=True) or {}
    if response.status_code != 200 or "access_token" not in body or "instance_url" in body:
        return response
    instance_url = request.host_url.rstrip("/") + f"/{VENDOR}"
    issued_at = str(int(time.time() * 1000))
    identity = f"{instance_url}/id/{ORG_ID}/0055g0000000001AAA"
    client_secret = request.form.get("client_secret") or (request.authorization.password if request.authorization else "") or ""
    body.pop("expires_in", None)  # Salesforce does not send it: sessions end by the org's timeout policy
    body.update(
        {
            "instance_url": instance_url,
            "id": identity,
            "issued_at": issued_at,
            "signature": base64.b64encode(hmac.new(client_secret.encode(), (identity + issued_at).encode(), hashlib.sha256).digest()).decode(),
        }
    )
    return jsonify(body)


def _version_ok(version: str) -> bool:
    return version.startswith("v") and version[1:] in VERSIONS


def api_blueprint() -> Blueprint:
    bp = Blueprint("salesforce_api", __name__)

    @bp.before_request
    def _daily_limit():
        # Token and identity endpoints do not count against the org's daily API requests.
        if not request.path.startswith(f"/{VENDOR}/services/data"):
            return None
        with STORE.lock:
            faults = STORE.faults_for(VENDOR)
            if faults.quota_remaining is not None:
                if faults.quota_remaining <= 0:
                    return _errors(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
                faults.quota_remaining -= 1
            usage = STORE.collection(VENDOR, "_usage")
            usage["used"] = usage.get("used", 0) + 1
        return None

    @bp.after_request
    def _limit_header(response: Response) -> Response:
        if request.path.startswith(f"/{VENDOR}/services/data"):
            with STORE.lock:
                remaining = STORE.faults_for(VENDOR).quota_remaining
                used = STORE.collection(VENDOR, "_usage").get("used", 0)
            if remaining is not None:
                used = DAILY_LIMIT - max(0, remaining)
            response.headers["Sforce-Limit-Info"] = f"api-usage={min(used, DAILY_LIMIT)}/{DAILY_LIMIT}"
        return response

    @bp.route("/services/oauth2/authorize", methods=["GET", "POST"])
    def authorize():
        return current_app.view_functions[f"{VENDOR}_oauth.authorize"]()

    @bp.post("/services/oauth2/token")
    def token():
        """Salesforce's real token path; the generic OAuth server issues the tokens and `_with_salesforce_fields` adds the rest."""
        return _with_salesforce_fields(current_app.view_functions[f"{VENDOR}_oauth.token"]())

    @bp.post("/services/oauth2/revoke")
    def revoke():
        token_value = request.values.get("token", "")
        with STORE.lock:
            STORE.tokens.pop(token_value, None)
            STORE.refresh_tokens.pop(token_value, None)
        return Response(status=200)

    @bp.get("/services/oauth2/userinfo")
    def userinfo():
        if failure := _check_auth():
            return failure
        return jsonify(
            {
                "sub": f"{request.host_url.rstrip('/')}/{VENDOR}/id/{ORG_ID}/0055g0000000001AAA",
                "user_id": "0055g0000000001AAA",
                "organization_id": ORG_ID,
                "preferred_username": "ava.chen@acme.example",
                "email": "ava.chen@acme.example",
                "name": "Ava Chen",
                "user_type": "STANDARD",
                "active": True,
            }
        )

    @bp.get("/services/data/")
    @bp.get("/services/data")
    def versions():
        return jsonify([{"label": f"v{v}", "url": f"/services/data/v{v}", "version": v} for v in VERSIONS])

    @bp.get("/services/data/<version>/limits")
    @bp.get("/services/data/<version>/limits/")
    def limits(version: str):
        if failure := _check_auth() or (None if _version_ok(version) else _errors(404, "NOT_FOUND", "The requested resource does not exist")):
            return failure
        with STORE.lock:
            remaining = STORE.faults_for(VENDOR).quota_remaining
            used = STORE.collection(VENDOR, "_usage").get("used", 0)
        left = remaining if remaining is not None else DAILY_LIMIT - used
        return jsonify(
            {
                "DailyApiRequests": {"Max": DAILY_LIMIT, "Remaining": max(0, left)},
                "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000},
                "DataStorageMB": {"Max": 5120, "Remaining": 5000},
            }
        )

    @bp.get("/services/data/<version>/sobjects/")
    @bp.get("/services/data/<version>/sobjects")
    def describe_global(version: str):
        if failure := _check_auth():
            return failure
        return jsonify(
            {
                "encoding": "UTF-8",
                "maxBatchSize": 200,
                "sobjects": [
                    {
                        "name": n,
                        "label": LABELS[n],
                        "custom": False,
                        "queryable": True,
                        "createable": n != "User",
                        "updateable": True,
                        "keyPrefix": ID_PREFIX[n],
                    }
                    for n in SCHEMA
                ],
            }
        )

    @bp.get("/services/data/<version>/sobjects/<name>/describe")
    @bp.get("/services/data/<version>/sobjects/<name>/describe/")
    def describe(version: str, name: str):
        if failure := _check_auth():
            return failure
        sobject = _sobject(name)
        if not sobject:
            return _errors(404, "NOT_FOUND", f"The requested resource does not exist: {name}")
        return jsonify(
            {
                "name": sobject,
                "label": LABELS[sobject],
                "custom": False,
                "keyPrefix": ID_PREFIX[sobject],
                "createable": sobject != "User",
                "updateable": True,
                "queryable": True,
                "fields": SCHEMA[sobject],
                "urls": {"sobject": f"/services/data/{version}/sobjects/{sobject}", "describe": f"/services/data/{version}/sobjects/{sobject}/describe"},
            }
        )

    def _query(version: str, include_deleted: bool):
        if failure := _check_auth():
            return failure
        soql = request.args.get("q")
        if not soql:
            return _errors(400, "MALFORMED_QUERY", "A query string (q) is required")
        try:
            rows = run_soql(soql, include_deleted=include_deleted, version=version[1:])
        except SoqlError as error:
            return _errors(400, error.code, error.message)
        match = re.search(r"batchSize=(\d+)", request.headers.get("Sforce-Query-Options", ""))
        batch = max(200, min(int(match.group(1)), 2000)) if match else 2000  # Salesforce: min 200, max 2000
        return _page(version, rows, 0, batch)

    def _page(version: str, rows: list[dict], offset: int, batch: int) -> Response:
        chunk = rows[offset : offset + batch]
        body: dict[str, Any] = {"totalSize": len(rows), "done": offset + batch >= len(rows), "records": chunk}
        if not body["done"]:
            locator = "01g5g" + secrets.token_hex(5).upper() + "AAA"
            with STORE.lock:
                STORE.collection(VENDOR, "_locators")[locator] = {"rows": rows, "batch": batch, "at": time.time()}
            body["nextRecordsUrl"] = f"/services/data/{version}/query/{locator}-{offset + batch}"
        return jsonify(body)

    @bp.get("/services/data/<version>/query")
    @bp.get("/services/data/<version>/query/")
    def query(version: str):
        return _query(version, include_deleted=False)

    @bp.get("/services/data/<version>/queryAll")
    @bp.get("/services/data/<version>/queryAll/")
    def query_all(version: str):
        return _query(version, include_deleted=True)

    @bp.get("/services/data/<version>/query/<locator>")
    @bp.get("/services/data/<version>/queryAll/<locator>")
    def query_more(version: str, locator: str):
        if failure := _check_auth():
            return failure
        locator_id, _, offset = locator.rpartition("-")
        with STORE.lock:
            state = STORE.collection(VENDOR, "_locators").get(locator_id)
        if not state or not offset.isdigit():
            return _errors(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        return _page(version, state["rows"], int(offset), state["batch"])

    def _validate_fields(sobject: str, fields: dict, *, creating: bool, record_id: str = "") -> Response | None:
        for name in fields:
            definition = _field(sobject, name)
            if not definition:
                return _errors(400, "INVALID_FIELD", f"No such column '{name}' on sobject of type {sobject}")
            if not definition["createable"]:
                return _errors(
                    400,
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    f"Unable to create/update fields: {name}. Please check the security settings of this field and verify that it is read/write for your profile or permission set.",
                    [name],
                )
        if creating:
            missing = [f for f in REQUIRED.get(sobject, []) if not fields.get(f) and not any(k.lower() == f.lower() and v for k, v in fields.items())]
            if missing:
                return _errors(400, "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]", missing)
        for definition in SCHEMA[sobject]:
            if definition["unique"]:
                value = next((v for k, v in fields.items() if k.lower() == definition["name"].lower()), None)
                clash = value and next(
                    (r for r in _table(sobject).values() if not r["IsDeleted"] and r["Id"] != record_id and r.get(definition["name"]) == value), None
                )
                if clash:
                    return _errors(
                        400,
                        "DUPLICATE_VALUE",
                        f"duplicate value found: {definition['name']} duplicates value on record with id: {clash['Id']}",
                        [definition["name"]],
                    )
        return None

    def _canonical(sobject: str, fields: dict) -> dict:
        return {_field(sobject, k)["name"]: v for k, v in fields.items()}

    def _create(sobject: str, fields: dict) -> tuple[dict, Response | None]:
        with STORE.lock:
            if failure := _validate_fields(sobject, fields, creating=True):
                return {}, failure
            record = _insert(sobject, _canonical(sobject, fields))
        STORE.record_created(VENDOR, sobject, record["Id"], str(record.get("Name") or record.get("Subject") or record["Id"]))
        with STORE.lock:
            settings = _settings()
            if settings.get("fail_after_create_next", 0) > 0:
                settings["fail_after_create_next"] -= 1
                return record, _errors(503, "SERVER_UNAVAILABLE", "Service unavailable (sandbox: created, then failed)")
        return record, None

    @bp.post("/services/data/<version>/sobjects/<name>")
    @bp.post("/services/data/<version>/sobjects/<name>/")
    def create(version: str, name: str):
        if failure := _check_auth():
            return failure
        sobject = _sobject(name)
        if not sobject or sobject == "User":
            return _errors(404, "NOT_FOUND", f"The requested resource does not exist: {name}")
        fields = request.get_json(silent=True)
        if not isinstance(fields, dict):
            return _errors(400, "JSON_PARSER_ERROR", "The request body must be a JSON object of field values")
        record, failure = _create(sobject, fields)
        if failure:
            return failure
        response = jsonify({"id": record["Id"], "success": True, "errors": []})
        response.status_code = 201
        response.headers["Location"] = f"/services/data/{version}/sobjects/{sobject}/{record['Id']}"
        return response

    @bp.route("/services/data/<version>/sobjects/<name>/<record_id>", methods=["GET", "PATCH", "DELETE"])
    def record(version: str, name: str, record_id: str):
        if failure := _check_auth():
            return failure
        sobject = _sobject(name)
        row = _table(sobject).get(record_id) if sobject else None
        if not row or row["IsDeleted"]:
            return _errors(404, "NOT_FOUND", "The requested resource does not exist")
        if request.method == "GET":
            fields = [f for f in (request.args.get("fields") or "").split(",") if f] or [d["name"] for d in SCHEMA[sobject]]
            try:
                return jsonify(_render(sobject, row, fields, version[1:]))
            except (SoqlError, TypeError):
                return _errors(400, "INVALID_FIELD", f"No such column on entity '{sobject}'")
        if request.method == "DELETE":
            with STORE.lock:
                row["IsDeleted"] = True
                _touch(sobject, row)
                STORE.collection(VENDOR, "_deleted")[record_id] = {"sobject": sobject, "deletedDate": row["SystemModstamp"]}
            return Response(status=204)
        fields = request.get_json(silent=True)
        if not isinstance(fields, dict):
            return _errors(400, "JSON_PARSER_ERROR", "The request body must be a JSON object of field values")
        with STORE.lock:
            if failure := _validate_fields(sobject, fields, creating=False, record_id=record_id):
                return failure
            row.update(_canonical(sobject, fields))
            _touch(sobject, row)
        return Response(status=204)

    @bp.patch("/services/data/<version>/sobjects/<name>/<field>/<path:value>")
    def upsert(version: str, name: str, field: str, value: str):
        """Upsert by external id: 201 created, 200 updated (API v46+ bodies)."""
        if failure := _check_auth():
            return failure
        sobject = _sobject(name)
        definition = _field(sobject, field) if sobject else None
        if not definition or not definition["idLookup"]:
            return _errors(404, "NOT_FOUND", f"Provided external ID field does not exist or is not accessible: {field}")
        fields = request.get_json(silent=True)
        if not isinstance(fields, dict):
            return _errors(400, "JSON_PARSER_ERROR", "The request body must be a JSON object of field values")
        with STORE.lock:
            matches = [r for r in _table(sobject).values() if not r["IsDeleted"] and r.get(definition["name"]) == value]
            if len(matches) > 1:
                return _errors(300, "MULTIPLE_CHOICES", f"More than one record found for external id field {definition['name']} with value {value}")
            if matches:
                row = matches[0]
                if failure := _validate_fields(sobject, fields, creating=False, record_id=row["Id"]):
                    return failure
                row.update(_canonical(sobject, fields))
                _touch(sobject, row)
                return jsonify({"id": row["Id"], "success": True, "errors": [], "created": False})
        record, failure = _create(sobject, {**fields, definition["name"]: value})
        if failure:
            return failure
        response = jsonify({"id": record["Id"], "success": True, "errors": [], "created": True})
        response.status_code = 201
        return response

    @bp.get("/services/data/<version>/sobjects/<name>/deleted/")
    @bp.get("/services/data/<version>/sobjects/<name>/deleted")
    def deleted(version: str, name: str):
        if failure := _check_auth():
            return failure
        sobject = _sobject(name)
        try:
            start, end = _parse_datetime(request.args["start"]), _parse_datetime(request.args["end"])
        except (KeyError, ValueError):
            return _errors(400, "MALFORMED_QUERY", "start and end are required ISO 8601 date-times")
        if time.time() - start > 15 * 86400:
            return _errors(400, "INVALID_REPLICATION_DATE", "startDate cannot be more than 15 days ago")
        with STORE.lock:
            rows = [
                {"id": record_id, "deletedDate": info["deletedDate"]}
                for record_id, info in STORE.collection(VENDOR, "_deleted").items()
                if info["sobject"] == sobject and start <= _parse_datetime(info["deletedDate"]) <= end
            ]
        return jsonify({"deletedRecords": rows, "earliestDateAvailable": _sf_datetime(time.time() - 15 * 86400), "latestDateCovered": _sf_datetime(end)})

    @bp.get("/id/<org_id>/<user_id>")
    def identity(org_id: str, user_id: str):
        if failure := _check_auth():
            return failure
        user = _table("User").get(user_id) or next(iter(_table("User").values()))
        instance = request.host_url.rstrip("/") + f"/{VENDOR}"
        return jsonify(
            {
                "id": f"{instance}/id/{org_id}/{user_id}",
                "user_id": user_id,
                "organization_id": org_id,
                "username": user["Username"],
                "email": user["Email"],
                "display_name": user["Name"],
                "active": True,
                "urls": {"rest": f"{instance}/services/data/v{{version}}/", "query": f"{instance}/services/data/v{{version}}/query/"},
            }
        )

    return bp


def control_blueprint() -> Blueprint:
    bp = Blueprint("salesforce_control", __name__)

    @bp.post("/_sandbox/settings")
    def settings():
        body = request.get_json(force=True) or {}
        unknown = set(body) - {"fail_after_create_next"}
        if unknown:
            return jsonify({"error": f"unknown settings: {sorted(unknown)}"}), 400
        with STORE.lock:
            _settings().update(body)
            return jsonify(dict(_settings()))

    @bp.post("/_sandbox/bulk/<name>")
    def bulk(name: str):
        """Load N synthetic records (paging tests need more than the 200-row minimum batch)."""
        sobject = _sobject(name)
        body = request.get_json(force=True) or {}
        count = int(body.get("count", 0))
        if not sobject or not 0 < count <= 20000:
            return jsonify({"error": "known sObject and 0 < count <= 20000 required"}), 400
        template = body.get("fields") or {}
        created = []
        with STORE.lock:
            for index in range(count):
                values = {k: (v.format(n=index) if isinstance(v, str) else v) for k, v in template.items()}
                created.append(_insert(sobject, _canonical_fields(sobject, values))["Id"])
        return jsonify({"ids": created})

    return bp


def _canonical_fields(sobject: str, fields: dict) -> dict:
    return {(_field(sobject, k) or {"name": k})["name"]: v for k, v in fields.items()}


def blueprints() -> list[Blueprint]:
    from sandbox.server import install_faults

    oauth = oauth_blueprint(OAuthProfile(VENDOR, access_ttl=7200, rotates_refresh_token=False))

    @oauth.after_request
    def _token_fields(response: Response) -> Response:
        # The generic /oauth/token (used when Bastion sets config["oauth_base_url"]) answers like Salesforce too.
        return _with_salesforce_fields(response) if request.path.endswith("/oauth/token") else response

    api = api_blueprint()
    for bp in (oauth, api):
        install_faults(
            bp, VENDOR, rate_limited=_rate_limited, error=lambda status, message: _errors(status, "SERVER_ERROR" if status >= 500 else "BAD_REQUEST", message)
        )
    return [oauth, api, control_blueprint()]
