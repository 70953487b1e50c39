"""The declared engine's shapes beyond Asana's, each served on its own loopback app over real HTTP: Basic auth
(Amplitude), page/per_page paging with typed totals and singular/plural envelopes (Aha!), JSON:API resources with
relationships, `included` and a corrected published document (Brandfolder), references by name or reference number."""

from __future__ import annotations

import base64

import pytest
import requests
import yaml

from sandbox.declared import DESCRIPTIONS_DIR
from sandbox.declared.description import DescriptionInvalid, parse
from tests.sandbox.test_declared_sandbox import own_mismatches, served


def description(vendor: str, renamed: str) -> dict:
    doc = yaml.safe_load((DESCRIPTIONS_DIR / f"{vendor}.yaml").read_text())
    doc["vendor"] = renamed
    return doc


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_basic_auth_takes_the_described_pair_and_nothing_else():
    with served(description("amplitude", "amplitude_shapes")) as base:
        good = basic("sandbox-amplitude-api-key", "sandbox-amplitude-secret-key")
        chart = requests.get(f"{base}/api/3/chart/k2f7a9x/query", headers=good, timeout=5)
        assert chart.status_code == 200 and "id" not in chart.json()["data"]  # hidden: the chart's id is not in its results
        assert chart.json()["data"]["seriesLabels"] == ["Web", "iOS"]
        cohorts = requests.get(f"{base}/api/3/cohorts", headers=good, timeout=5).json()
        assert [c["id"] for c in cohorts["cohorts"]] == ["c0h0rt1", "c0h0rt2"]
        for headers in (
            basic("sandbox-amplitude-api-key", "wrong"),
            {"Authorization": "Bearer sandbox-amplitude-api-key:sandbox-amplitude-secret-key"},
            {"Authorization": "Basic not-base64!"},
            {},
        ):
            refused = requests.get(f"{base}/api/3/cohorts", headers=headers, timeout=5)
            assert refused.status_code == 401 and refused.json() == {"error": {"message": "Invalid API key or secret key"}}
    assert own_mismatches("amplitude_shapes") == []


def test_page_number_paging_answers_typed_totals_and_references_resolve_by_name_or_reference_number():
    auth = {"Authorization": "Bearer sandbox-aha-api-key"}
    with served(description("aha", "aha_shapes")) as base:
        features = f"{base}/api/v1/products/6100000000000000001/features"
        third = requests.get(features, params={"page": 3, "per_page": 20}, headers=auth, timeout=5).json()
        assert third["pagination"] == {"total_records": 45, "total_pages": 3, "current_page": 3} and len(third["features"]) == 5
        assert requests.get(features, params={"page": 9, "per_page": 20}, headers=auth, timeout=5).json()["features"] == []
        assert requests.get(features, params={"page": "two"}, headers=auth, timeout=5).status_code == 400

        me = requests.get(f"{base}/api/v1/me", headers=auth, timeout=5).json()
        assert me["user"]["email"] == "priya.launch@acme.example"  # a read without an id reads the caller
        moved = requests.put(f"{base}/api/v1/features/NIM-4", json={"feature": {"workflow_status": {"name": "Shipped"}}}, headers=auth, timeout=5)
        assert moved.status_code == 200 and moved.json()["feature"]["workflow_status"] == {
            "id": "7100000000000000005",
            "name": "Shipped",
            "position": 5,
            "complete": True,
            "color": "#c6e7c6",
        }
        unknown = requests.put(f"{base}/api/v1/features/NIM-4", json={"feature": {"workflow_status": {"name": "Teleported"}}}, headers=auth, timeout=5)
        assert unknown.status_code == 400 and "Teleported" in unknown.json()["errors"]["message"]
        assert requests.get(f"{base}/api/v1/features/NIM-404", headers=auth, timeout=5).status_code == 404
    assert own_mismatches("aha_shapes") == []


def test_jsonapi_resources_relationships_included_and_a_corrected_document():
    auth = {"Authorization": "Bearer sandbox-brandfolder-api-key"}
    invite = {"data": {"attributes": {"email": "new.pm@acme.example", "permission_level": "guest"}}}
    with served(description("brandfolder", "brandfolder_shapes")) as base:
        created = requests.post(f"{base}/collections/bfcol1-launchkit-001/invitations", json=invite, headers=auth, timeout=5)
        assert created.status_code == 200 and created.json()["meta"] == {"auto_accepted": False}
        invitation = created.json()["data"]
        assert invitation["type"] == "invitations" and invitation["attributes"] == {"email": "new.pm@acme.example", "permission_level": "guest"}
        assert invitation["relationships"] == {"inviteable": {"id": "bfcol1-launchkit-001", "type": "collections"}}  # assigned from the path

        access = requests.get(f"{base}/collections/bfcol1-launchkit-001/user_permissions", headers=auth, timeout=5).json()
        assert access["data"][0]["relationships"]["user"] == {"id": "bfusr1-design-000002", "type": "users"}
        assert access["included"] == [
            {"id": "bfusr1-design-000002", "type": "users", "attributes": {"email": "dana.design@acme.example", "first_name": "Dana", "last_name": "Design"}}
        ]
        assert access["meta"] == {"current_page": 1, "next_page": None, "prev_page": None, "total_pages": 1, "total_count": 1}
        gone = requests.delete(f"{base}/invitations/{invitation['id']}", headers=auth, timeout=5)
        assert gone.status_code == 200 and gone.json() == {}
    assert own_mismatches("brandfolder_shapes") == []

    # Without the description's erratum the published document's create answer disagrees, and the check says so.
    uncorrected = description("brandfolder", "brandfolder_uncorrected")
    uncorrected["spec"].pop("errata")
    with served(uncorrected) as base:
        requests.post(f"{base}/collections/bfcol1-launchkit-001/invitations", json=invite, headers=auth, timeout=5).raise_for_status()
    [mismatch] = own_mismatches("brandfolder_uncorrected")
    assert mismatch["status"] == 200 and "data/attributes" in mismatch["problems"][0]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"auth": {"style": "digest"}}, r"auth.style must be one of bearer, basic"),
        ({"collections": {"x": {"resource_type": "x", "shape": "xml"}}, "routes": []}, r"collections.x.shape must be one of flat, jsonapi"),
    ],
)
def test_a_description_with_an_unknown_shape_or_auth_style_is_refused(change, message):
    doc = {"vendor": "acme", "spec": {"file": "x.json"}, "errors": {"template": {"message": "{message}"}}, "collections": {}, "routes": [], **change}
    with pytest.raises(DescriptionInvalid, match=message):
        parse(doc)
