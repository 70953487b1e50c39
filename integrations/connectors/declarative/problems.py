"""What is wrong with a spec, each problem with the precise path to it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

# Top-level sections keyed by a name of the author's: their entries read as `actions[create_incident]`.
KEYED_SECTIONS = frozenset({"entities", "actions", "requests", "variables", "constants", "options", "fetch_status", "hooks"})


@dataclass(frozen=True)
class SpecProblem:
    path: str  # e.g. "actions[create_incident].request.path", "" for the document itself
    message: str

    def __str__(self) -> str:
        return f"{self.path or '(spec)'}: {self.message}"


class SpecInvalid(ValueError):
    """The spec cannot be compiled; `problems` names each problem and where it is."""

    def __init__(self, problems: Iterable[SpecProblem]):
        self.problems = list(problems)
        super().__init__("The connector spec is invalid:\n" + "\n".join(f"- {p}" for p in self.problems))


def spec_path(parts: Iterable[str | int]) -> str:
    """["actions", "create_incident", "request", "path"] → "actions[create_incident].request.path"."""
    items = list(parts)
    out = ""
    for index, part in enumerate(items):
        if isinstance(part, int) or (index == 1 and items[0] in KEYED_SECTIONS):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out
