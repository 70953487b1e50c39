"""Every connector test that talks to the sandbox also checks the sandbox against the vendors' published specs."""

from __future__ import annotations

import pytest
import requests


@pytest.fixture(autouse=True)
def _vendor_spec_conformance(request):
    """After a sandbox test: any request a stand-in accepted or answer it gave that the vendor's spec does not allow fails it."""
    yield
    if "sandbox" not in request.fixturenames or request.node.get_closest_marker("spec_exempt"):
        return
    server = request.getfixturevalue("sandbox_server")  # session-wide, still up (the per-test `sandbox` is torn down first)
    mismatches = requests.get(f"{server.url}/_control/spec-mismatches", timeout=10).json()
    if mismatches:
        lines = [f"{m['method']} {m['path']} → {m['status']}: {'; '.join(m['problems'])}" for m in mismatches[:20]]
        pytest.fail("The sandbox disagrees with the vendors' specs:\n" + "\n".join(lines), pytrace=False)
