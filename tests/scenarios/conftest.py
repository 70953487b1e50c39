"""Scenario test fixtures (shared with tests/forms_engine)."""

from tests.scenarios.fixtures import *  # noqa: F403
