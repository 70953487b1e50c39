"""An out-of-tree connector registered through the `bastion.connectors` entry point appears in the catalog."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from accounts.models import Role
from integrations import registry

PACKAGE = Path(__file__).parent / "partner_pkg"


@pytest.fixture
def installed_partner_package(tmp_path):
    """Install the package the way pip lays it out: the module plus a .dist-info with entry_points.txt, on sys.path."""
    site = tmp_path / "site-packages"
    site.mkdir()
    shutil.copytree(PACKAGE / "bastion_partner_widgets", site / "bastion_partner_widgets")
    dist_info = site / "bastion_partner_widgets-1.0.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: bastion-partner-widgets\nVersion: 1.0.0\n")
    # The same entry point the package's pyproject.toml declares.
    (dist_info / "entry_points.txt").write_text("[bastion.connectors]\npartner_widgets = bastion_partner_widgets:WidgetsConnector\n")
    (dist_info / "RECORD").write_text("")
    sys.path.insert(0, str(site))
    registry.reload_catalog()
    yield
    sys.path.remove(str(site))
    sys.modules.pop("bastion_partner_widgets", None)
    registry.reload_catalog()


def test_the_pyproject_declares_the_entry_point():
    assert '[project.entry-points."bastion.connectors"]' in (PACKAGE / "pyproject.toml").read_text()


def test_partner_connector_appears_in_the_catalog_and_can_be_connected(installed_partner_package, api_for, users_by_role):
    viewer = api_for(users_by_role[Role.VIEWER])
    catalog = {c["key"]: c for c in viewer.get("/api/connectors").json()}
    assert catalog["partner_widgets"]["name"] == "Widgets Inc." and catalog["partner_widgets"]["source"] == "entry_point"
    assert catalog["partner_widgets"]["connection_status"] == "not_connected"
    admin = api_for(users_by_role[Role.ADMIN])
    response = admin.post("/api/integrations/connect", {"connector_key": "partner_widgets", "credentials": {"api_key": "w-123"}}, format="json")
    assert response.status_code == 201 and response.json()["test"]["ok"] is True
    assert {c["key"]: c for c in viewer.get("/api/connectors").json()}["partner_widgets"]["connection_status"] == "connected"


def test_without_the_package_it_is_not_in_the_catalog(api):
    assert "partner_widgets" not in {c["key"] for c in api.get("/api/connectors").json()}


def test_a_broken_entry_point_does_not_take_the_catalog_down(tmp_path, api):
    site = tmp_path / "broken"
    dist_info = site / "broken_pkg-0.1.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-pkg\nVersion: 0.1\n")
    (dist_info / "entry_points.txt").write_text("[bastion.connectors]\nbroken = no_such_module:Connector\n")
    sys.path.insert(0, str(site))
    registry.reload_catalog()
    try:
        keys = {c["key"] for c in api.get("/api/connectors").json()}
        assert "demo" in keys and "broken" not in keys
    finally:
        sys.path.remove(str(site))
        registry.reload_catalog()
