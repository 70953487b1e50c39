"""A partner's connector living outside Bastion's tree: Widgets Inc.'s tickets. It imports only the public connector SDK."""

from .connector import WidgetsConnector

__all__ = ["WidgetsConnector"]
