"""Declarative connectors: one YAML spec per vendor, validated by a JSON Schema, compiled into a BaseConnector subclass.

Public API (docs/connectors.md, "Declarative connectors"): SPEC_SCHEMA, validate_spec, compile_spec, load_spec_file,
try_request, SpecProblem, SpecInvalid.
"""

from integrations.connectors.declarative.compiler import compile_spec, load_spec_file, read_spec_file
from integrations.connectors.declarative.console import try_request
from integrations.connectors.declarative.problems import SpecInvalid, SpecProblem
from integrations.connectors.declarative.validate import SPEC_SCHEMA, validate_spec

__all__ = ["SPEC_SCHEMA", "SpecInvalid", "SpecProblem", "compile_spec", "load_spec_file", "read_spec_file", "try_request", "validate_spec"]
