"""Atlassian Statuspage, declared in spec.yaml: read incidents and components; create and update public incidents exactly once."""

from pathlib import Path

from integrations.connectors.declarative import load_spec_file

CONNECTOR = StatuspageConnector = load_spec_file(Path(__file__).with_name("spec.yaml"))
MANIFEST = CONNECTOR.manifest

__all__ = ["CONNECTOR", "MANIFEST", "StatuspageConnector"]
