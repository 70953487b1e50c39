"""Form engine test fixtures (shared with tests/scenarios)."""

from tests.scenarios.fixtures import *  # noqa: F403
