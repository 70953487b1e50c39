"""ServiceNow-style encoded queries (`sysparm_query`) over a declared collection's stored records.

Terms joined by `^` (AND) or `^OR` (OR with the term before), each `<field><op><value>` with op one of
`!=`, `>=`, `<=`, `>`, `<`, `=`, `LIKE`, `NOTLIKE`, `STARTSWITH`, `ENDSWITH`, `ISEMPTY`, `ISNOTEMPTY`, `IN`; and
`ORDERBY<field>` / `ORDERBYDESC<field>` for the order. As on the vendor, a term naming an unknown field or an unknown
operator is ignored rather than refused. Parsing is by string scanning (no regular expressions on user text).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# Longest operators first, so `>=` is not read as `>` followed by a value starting with `=`.
WORD_OPERATORS = ("NOTLIKE", "STARTSWITH", "ENDSWITH", "ISNOTEMPTY", "ISEMPTY", "LIKE", "IN")
SYMBOL_OPERATORS = ("!=", ">=", "<=", ">", "<", "=")


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _compare(left: str, right: str) -> int:
    """Numbers compare as numbers; anything else (including 'YYYY-MM-DD HH:MM:SS' times) as text."""
    a, b = _number(left), _number(right)
    if a is not None and b is not None:
        return (a > b) - (a < b)
    return (left > right) - (left < right)


def _test(op: str, current: str, value: str) -> bool:
    if op == "=":
        return current == value
    if op == "!=":
        return current != value
    if op in (">", ">=", "<", "<="):
        if current == "":
            return False
        order = _compare(current, value)
        return {">": order > 0, ">=": order >= 0, "<": order < 0, "<=": order <= 0}[op]
    if op == "LIKE":
        return value.lower() in current.lower()
    if op == "NOTLIKE":
        return value.lower() not in current.lower()
    if op == "STARTSWITH":
        return current.lower().startswith(value.lower())
    if op == "ENDSWITH":
        return current.lower().endswith(value.lower())
    if op == "ISEMPTY":
        return current == ""
    if op == "ISNOTEMPTY":
        return current != ""
    return current in value.split(",")  # IN


def _split_term(term: str, known: Callable[[str], bool]) -> tuple[str, str, str] | None:
    """(field, operator, value) of one term, or None when it cannot be read (ignored, as the vendor does)."""
    for index in range(1, len(term) + 1):
        field = term[:index]
        rest = term[index:]
        if not known(field):
            continue
        for op in SYMBOL_OPERATORS + WORD_OPERATORS:
            if rest.startswith(op):
                return field, op, rest[len(op) :]
    return None


def parse(query: str, known: Callable[[str], bool]) -> tuple[list[list[tuple[str, str, str]]], list[tuple[str, bool]]]:
    """The query as AND-ed clauses of OR-ed terms, read the vendor's way (`a^b^ORc` is a AND (b OR c)), and the ordering."""
    clauses: list[list[tuple[str, str, str]]] = []  # each inner list is OR-ed; the clauses are AND-ed
    order: list[tuple[str, bool]] = []
    for part in query.split("^"):
        if not part or part == "EQ":
            continue
        if part.startswith("ORDERBYDESC"):
            order.append((part[len("ORDERBYDESC") :], True))
            continue
        if part.startswith("ORDERBY"):
            order.append((part[len("ORDERBY") :], False))
            continue
        alternative = part.startswith("OR") and clauses and _split_term(part[2:], known) is not None
        term = _split_term(part[2:] if alternative else part, known)
        if term is None:
            continue
        if alternative:
            clauses[-1].append(term)
        else:
            clauses.append([term])
    return clauses, order


def apply(rows: list[dict[str, Any]], query: str, *, value_of: Callable[[dict[str, Any], str], str], known: Callable[[str], bool]) -> list[dict[str, Any]]:
    """The rows the query selects, in the order it asks for (stable: ties keep the stored order)."""
    clauses, order = parse(query, known)
    chosen = [row for row in rows if all(any(_test(op, value_of(row, field), value) for field, op, value in clause) for clause in clauses)]
    for field, descending in reversed(order):
        if known(field):
            chosen.sort(key=lambda row, f=field: _sort_key(value_of(row, f)), reverse=descending)
    return chosen


def _sort_key(value: str) -> tuple[int, float, str]:
    number = _number(value)
    return (0, number, "") if number is not None else (1, 0.0, value)
