"""The sync engine's fixtures (Sandbox Directory integration, in-process sync runs), shared with the suppression tests."""

from tests.sync.conftest import _sync_settings, make_directory, run_sync  # noqa: F401
