"""Spec-driven stand-ins: a vendor served from its published OpenAPI document plus a small state description (<vendor>.yaml).

sandbox/server.py mounts every description here next to the hand-written stand-ins of sandbox/vendors/.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

DESCRIPTIONS_DIR = Path(__file__).parent


@cache
def declared_vendors() -> list:
    """One DeclaredVendor per <vendor>.yaml here, built once per process (the server asks for its modules more than once)."""
    from sandbox.declared.description import load
    from sandbox.declared.engine import DeclaredVendor

    return [DeclaredVendor(load(path)) for path in sorted(DESCRIPTIONS_DIR.glob("*.yaml"))]
