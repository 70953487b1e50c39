"""The spec's template language: `{{ expr }}` with paths, literals, `or`/`and`/`not`, comparisons, `~`, `if … else` and filters.

Hand-written scanner and parser: no eval, no attribute access on Python objects (only mapping keys and list indexes), no
regex over vendor text except re2's linear-time `matches`. A whole-value template (`"{{ input.ids }}"`) keeps its type.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import re2

from integrations.connectors.declarative.filters import FILTERS
from integrations.errors import ApiBadRequest

MAX_EXPRESSION = 2000
MAX_DEPTH = 40
MAX_VALUE = 1_000_000
KEYWORDS = {"and", "or", "not", "in", "if", "else", "true", "false", "none", "null"}
OPERATORS = ("==", "!=", "<=", ">=", "<", ">", "~", "+", "-", "*", "/", "|", ".", "[", "]", "(", ")", ",")


class TemplateError(ApiBadRequest):
    """A template that does not parse, names an unknown filter or fails on the values it met; the message says where.

    An ApiBadRequest: at run time it is the spec's configuration that is wrong, shown to people like a vendor's refusal.
    """


@dataclass(frozen=True)
class Token:
    kind: str  # name | number | string | op | end
    value: Any
    at: int


def _scan(text: str) -> list[Token]:
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char.isspace():
            i += 1
        elif char.isalpha() or char == "_":
            j = i
            while j < n and (text[j].isalnum() or text[j] == "_"):
                j += 1
            tokens.append(Token("name", text[i:j], i))
            i = j
        elif char.isdigit():
            j = i
            while j < n and (text[j].isdigit() or (text[j] == "." and j + 1 < n and text[j + 1].isdigit())):
                j += 1
            raw = text[i:j]
            tokens.append(Token("number", float(raw) if "." in raw else int(raw), i))
            i = j
        elif char in "'\"":
            j, out = i + 1, []
            while j < n and text[j] != char:
                if text[j] == "\\" and j + 1 < n:
                    out.append({"n": "\n", "t": "\t", "\\": "\\", "'": "'", '"': '"'}.get(text[j + 1], "\\" + text[j + 1]))
                    j += 2
                else:
                    out.append(text[j])
                    j += 1
            if j >= n:
                raise TemplateError(f"unterminated string at {i}")
            tokens.append(Token("string", "".join(out), i))
            i = j + 1
        else:
            for op in OPERATORS:
                if text.startswith(op, i):
                    tokens.append(Token("op", op, i))
                    i += len(op)
                    break
            else:
                raise TemplateError(f"unexpected '{char}' at {i}")
    tokens.append(Token("end", None, n))
    return tokens


# Nodes are tuples: ("lit", v) ("var", name) ("get", node, key_node) ("filter", node, name, args) ("not", n) ("bin", op, a, b)
# ("and", a, b) ("or", a, b) ("if", cond, then, else) ("list", items)
class _Parser:
    def __init__(self, text: str):
        self.tokens = _scan(text)
        self.i = 0
        self.depth = 0

    def peek(self, value: str | None = None, kind: str | None = None) -> bool:
        token = self.tokens[self.i]
        return (value is None or token.value == value) and (kind is None or token.kind == kind) and token.kind != "end"

    def take(self, value: str | None = None) -> Token:
        token = self.tokens[self.i]
        if value is not None and (token.value != value or token.kind == "string"):
            raise TemplateError(f"expected '{value}' at {token.at}")
        if token.kind == "end":
            raise TemplateError("unexpected end of expression")
        self.i += 1
        return token

    def parse(self) -> tuple:
        node = self.expr()
        if self.tokens[self.i].kind != "end":
            raise TemplateError(f"unexpected '{self.tokens[self.i].value}' at {self.tokens[self.i].at}")
        return node

    def expr(self) -> tuple:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise TemplateError("expression nested too deeply")
        node = self.or_expr()
        if self.peek("if", "name"):
            self.take()
            cond = self.or_expr()
            otherwise: tuple = ("lit", None)
            if self.peek("else", "name"):
                self.take()
                otherwise = self.expr()
            node = ("if", cond, node, otherwise)
        self.depth -= 1
        return node

    def or_expr(self) -> tuple:
        node = self.and_expr()
        while self.peek("or", "name"):
            self.take()
            node = ("or", node, self.and_expr())
        return node

    def and_expr(self) -> tuple:
        node = self.not_expr()
        while self.peek("and", "name"):
            self.take()
            node = ("and", node, self.not_expr())
        return node

    def not_expr(self) -> tuple:
        if self.peek("not", "name"):
            self.take()
            return ("not", self.not_expr())
        return self.comparison()

    def comparison(self) -> tuple:
        node = self.concat()
        for op in ("==", "!=", "<=", ">=", "<", ">"):
            if self.peek(op, "op"):
                self.take()
                return ("bin", op, node, self.concat())
        if self.peek("in", "name"):
            self.take()
            return ("bin", "in", node, self.concat())
        if self.peek("not", "name") and self.tokens[self.i + 1].value == "in":
            self.i += 2
            return ("not", ("bin", "in", node, self.concat()))
        return node

    def concat(self) -> tuple:
        node = self.additive()
        while self.peek("~", "op"):
            self.take()
            node = ("bin", "~", node, self.additive())
        return node

    def additive(self) -> tuple:
        node = self.multiplicative()
        while self.peek("+", "op") or self.peek("-", "op"):
            op = self.take().value
            node = ("bin", op, node, self.multiplicative())
        return node

    def multiplicative(self) -> tuple:
        node = self.pipe()
        while self.peek("*", "op") or self.peek("/", "op"):
            op = self.take().value
            node = ("bin", op, node, self.pipe())
        return node

    def pipe(self) -> tuple:
        node = self.postfix()
        while self.peek("|", "op"):
            self.take()
            name = self.take()
            if name.kind != "name":
                raise TemplateError(f"expected a filter name at {name.at}")
            if name.value not in FILTERS:
                raise TemplateError(f"unknown filter '{name.value}' (known: {', '.join(sorted(FILTERS))})")
            args: list[tuple] = []
            if self.peek("(", "op"):
                self.take()
                while not self.peek(")", "op"):
                    args.append(self.expr())
                    if not self.peek(")", "op"):
                        self.take(",")
                self.take(")")
            node = ("filter", node, name.value, tuple(args))
        return node

    def postfix(self) -> tuple:
        node = self.primary()
        while True:
            if self.peek(".", "op"):
                self.take()
                name = self.take()
                if name.kind not in ("name", "number"):
                    raise TemplateError(f"expected a name after '.' at {name.at}")
                node = ("get", node, ("lit", name.value))
            elif self.peek("[", "op"):
                self.take()
                key = self.expr()
                self.take("]")
                node = ("get", node, key)
            else:
                return node

    def primary(self) -> tuple:
        token = self.take()
        if token.kind in ("number", "string"):
            return ("lit", token.value)
        if token.kind == "name":
            literal = {"true": True, "false": False, "none": None, "null": None}
            if token.value in literal:
                return ("lit", literal[token.value])
            if token.value in KEYWORDS:
                raise TemplateError(f"unexpected '{token.value}' at {token.at}")
            return ("var", token.value)
        if token.value == "(":
            node = self.expr()
            self.take(")")
            return node
        if token.value == "-" and self.peek(kind="number"):
            return ("lit", -self.take().value)
        if token.value == "[":
            items: list[tuple] = []
            while not self.peek("]", "op"):
                items.append(self.expr())
                if not self.peek("]", "op"):
                    self.take(",")
            self.take("]")
            return ("list", tuple(items))
        raise TemplateError(f"unexpected '{token.value}' at {token.at}")


def _get(value: Any, key: Any) -> Any:
    if isinstance(value, Mapping):
        return value.get(key) if not isinstance(key, int) or key in value else value.get(str(key))
    if isinstance(value, list | tuple) and isinstance(key, int) and not isinstance(key, bool):
        return value[key] if -len(value) <= key < len(value) else None
    return None


def _bounded(value: Any) -> Any:
    """Strings and lists built by a template stay small: variables that double each other cannot fill a worker's memory."""
    if isinstance(value, str | list) and len(value) > MAX_VALUE:
        raise TemplateError(f"a template built a value longer than {MAX_VALUE} characters or items")
    return value


def _compare(op: str, a: Any, b: Any) -> Any:
    if op == "==":
        return a == b
    if op == "!=":
        return a != b
    if op == "in":
        return a in b if isinstance(b, str | list | tuple | Mapping) and (not isinstance(b, str) or isinstance(a, str)) else False
    if op == "~":
        return _bounded(("" if a is None else str(a)) + ("" if b is None else str(b)))
    if a is None or b is None:
        return None if op in "+-*/" else False
    try:
        if op == "+":
            return _bounded(a + b)
        if op == "-":
            return a - b
        if op in "*/" and not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (a, b)):
            raise TemplateError(f"'{op}' multiplies and divides numbers only")
        if op == "*":
            return a * b
        if op == "/":
            return a / b if b else None
        return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]
    except TypeError:
        raise TemplateError(f"cannot apply '{op}' to {type(a).__name__} and {type(b).__name__}") from None


def evaluate(node: tuple, scope: Mapping[str, Any]) -> Any:
    kind = node[0]
    if kind == "lit":
        return node[1]
    if kind == "var":
        return scope.get(node[1])
    if kind == "get":
        return _get(evaluate(node[1], scope), evaluate(node[2], scope))
    if kind == "filter":
        value, args = evaluate(node[1], scope), [evaluate(arg, scope) for arg in node[3]]
        try:
            return FILTERS[node[2]](value, *args)
        except (ValueError, TypeError, OverflowError, re2.error) as exc:
            raise TemplateError(f"filter '{node[2]}' failed: {exc}") from None
    if kind == "not":
        return not evaluate(node[1], scope)
    if kind == "and":
        left = evaluate(node[1], scope)
        return evaluate(node[2], scope) if left else left
    if kind == "or":
        left = evaluate(node[1], scope)
        return left if left else evaluate(node[2], scope)
    if kind == "if":
        return evaluate(node[2], scope) if evaluate(node[1], scope) else evaluate(node[3], scope)
    if kind == "list":
        return [evaluate(item, scope) for item in node[1]]
    return _compare(node[1], evaluate(node[2], scope), evaluate(node[3], scope))


@dataclass(frozen=True)
class Template:
    """A parsed template: literal text and expressions; `whole` when it is one expression and nothing else."""

    parts: tuple[str | tuple, ...]
    whole: bool

    def names(self) -> set[str]:
        """The top-level variables the template reads (for the validator's unknown-reference check)."""
        found: set[str] = set()

        def walk(node: Any) -> None:
            if isinstance(node, tuple) and node:
                if node[0] == "var":
                    found.add(node[1])
                for child in node[1:]:
                    walk(child)

        for part in self.parts:
            walk(part)
        return found

    def render(self, scope: Mapping[str, Any]) -> Any:
        if self.whole:
            return evaluate(self.parts[0], scope)  # type: ignore[arg-type]
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
            else:
                value = evaluate(part, scope)
                out.append("" if value is None else _text(value))
        return "".join(out)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@lru_cache(maxsize=4096)
def parse_template(text: str) -> Template:
    """Parse once (cached); raises TemplateError naming the problem."""
    parts: list[str | tuple] = []
    i = 0
    while True:
        start = text.find("{{", i)
        if start < 0:
            if text[i:]:
                parts.append(text[i:])
            break
        if text[i:start]:
            parts.append(text[i:start])
        end = text.find("}}", start + 2)
        if end < 0:
            raise TemplateError(f"'{{{{' at {start} is never closed with '}}}}'")
        expression = text[start + 2 : end]
        if len(expression) > MAX_EXPRESSION:
            raise TemplateError(f"expression at {start} is longer than {MAX_EXPRESSION} characters")
        if not expression.strip():
            raise TemplateError(f"empty expression at {start}")
        parts.append(_Parser(expression).parse())
        i = end + 2
    whole = len(parts) == 1 and isinstance(parts[0], tuple)
    return Template(tuple(parts), whole)


@lru_cache(maxsize=2048)
def parse_expression(text: str) -> Template:
    """A bare expression (a predicate such as `record.status == 'resolved'`), with or without braces."""
    stripped = text.strip()
    if stripped.startswith("{{") and stripped.endswith("}}"):
        return parse_template(stripped)
    return Template((_Parser(stripped).parse(),), True)


def render(value: Any, scope: Mapping[str, Any], *, drop_none: bool = False) -> Any:
    """Render every string in a JSON-like value; with drop_none, mapping keys whose value renders to None are left out."""
    if isinstance(value, str):
        return parse_template(value).render(scope) if "{{" in value else value
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            rendered = render(item, scope, drop_none=drop_none)
            if rendered is None and drop_none:
                continue
            out[render(key, scope) if isinstance(key, str) else key] = rendered
        return out
    if isinstance(value, list):
        return [render(item, scope, drop_none=drop_none) for item in value]
    return value


def holds(expression: str | bool | None, scope: Mapping[str, Any]) -> bool:
    """A predicate's truth; a literal true/false/absent is itself."""
    if expression is None or isinstance(expression, bool):
        return bool(expression) if expression is not None else True
    return bool(parse_expression(expression).render(scope))


def template_strings(value: Any, path: str, on_string: Callable[[str, str], None]) -> None:
    """Call on_string(path, text) for every string inside a JSON-like value (the validator checks each)."""
    if isinstance(value, str):
        on_string(path, value)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            template_strings(item, f"{path}.{key}", on_string)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            template_strings(item, f"{path}[{index}]", on_string)
