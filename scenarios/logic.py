"""JSON Logic for scenario conditions and rules: one evaluator, one operator whitelist shared with the browser."""

from __future__ import annotations

from typing import Any

import json_logic

# The operators json-logic-js (vendored in static/js/) and json-logic-qubit both implement with the same meaning.
# `method` (calls Python methods) and `log` are deliberately left out: definitions must evaluate identically in a browser.
ALLOWED_OPERATORS = frozenset(
    {
        "var", "missing", "missing_some",
        "if", "?:", "and", "or", "!", "!!",
        "==", "===", "!=", "!==", ">", ">=", "<", "<=",
        "in", "cat", "substr", "+", "-", "*", "/", "%", "min", "max", "merge",
        "filter", "map", "reduce", "all", "none", "some",
    }
)  # fmt: skip
SCOPED_OPERATORS = frozenset({"filter", "map", "reduce", "all", "none", "some"})


class LogicError(ValueError):
    """A JSON Logic expression that cannot be used (unknown operator, bad shape)."""


def check_expression(expression: Any, *, where: str = "") -> None:
    """Raise LogicError if the expression uses an operator outside the whitelist or is malformed."""
    if isinstance(expression, list):
        for item in expression:
            check_expression(item, where=where)
        return
    if isinstance(expression, dict):
        if len(expression) != 1:
            raise LogicError(f"an operation must be an object with exactly one operator, got keys {sorted(expression)}")
        operator, args = next(iter(expression.items()))
        if operator not in ALLOWED_OPERATORS:
            raise LogicError(f"unknown operator '{operator}'")
        if operator == "var" and isinstance(args, list) and args and not isinstance(args[0], (str, int)):
            raise LogicError("'var' must name a field (a string)")
        if operator in SCOPED_OPERATORS and (not isinstance(args, list) or len(args) < 2):
            raise LogicError(f"'{operator}' needs [array, expression]")
        check_expression(args, where=where)


def referenced_fields(expression: Any) -> set[str]:
    """The top-level field keys an expression reads (vars inside a scoped operation's body refer to items, not fields)."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item)
            return
        if not isinstance(node, dict) or len(node) != 1:
            return
        operator, args = next(iter(node.items()))
        if operator == "var":
            name = args[0] if isinstance(args, list) and args else args
            if isinstance(name, str) and name:
                found.add(name.split(".")[0])
            elif isinstance(name, (dict, list)):
                walk(name)
            return
        if operator in ("missing", "missing_some"):
            names = args[-1] if operator == "missing_some" and isinstance(args, list) and args else args
            names = names if isinstance(names, list) else [names]
            for name in names:
                if isinstance(name, str) and name:
                    found.add(name.split(".")[0])
                else:
                    walk(name)
            return
        if operator in SCOPED_OPERATORS and isinstance(args, list) and args:
            walk(args[0])  # only the array is read from the form; the body reads each item
            if operator == "reduce" and len(args) > 2:
                walk(args[2])
            return
        walk(args)

    walk(expression)
    return found


def evaluate(expression: Any, data: dict[str, Any]) -> Any:
    """Evaluate JSON Logic against form values; a failing expression counts as false rather than crashing a form."""
    try:
        return json_logic.jsonLogic(expression, data)
    except (ValueError, TypeError, ArithmeticError, KeyError, IndexError, AttributeError):
        return None


def truthy(value: Any) -> bool:
    """JSON Logic truthiness (JavaScript's): [] is truthy there, but json-logic-js treats empty arrays as falsy."""
    if isinstance(value, list):
        return len(value) > 0
    return bool(value)
