"""People never see a traceback: an unhandled error answers a friendly page (or the API's error body) with a reference id."""

from __future__ import annotations

import logging

import pytest
from django.test import Client
from django.urls import include, path

from common.error_pages import REFERENCE_HEADER


def _explode(request):
    raise RuntimeError("secret internals: password=hunter2")


urlpatterns = [
    path("boom/", _explode),
    path("api/boom/", _explode),
    path("", include("bastion_site.urls")),
]
handler500 = "common.error_pages.server_error"


@pytest.fixture
def failing_site(settings):
    settings.ROOT_URLCONF = __name__
    settings.DEBUG = False
    return Client(raise_request_exception=False)


@pytest.mark.django_db
def test_page_error_shows_reference_not_traceback(failing_site, caplog):
    with caplog.at_level(logging.ERROR):
        response = failing_site.get("/boom/")
    assert response.status_code == 500
    reference = response[REFERENCE_HEADER]
    body = response.content.decode()
    assert reference and reference in body
    assert "Traceback" not in body and "hunter2" not in body and "RuntimeError" not in body
    logged = [r for r in caplog.records if getattr(r, "reference", "") == reference]
    assert logged and logged[0].exc_info is not None  # the details are in the log, under the same reference


@pytest.mark.django_db
def test_api_error_answers_json_with_reference(failing_site):
    response = failing_site.get("/api/boom/")
    assert response.status_code == 500
    body = response.json()
    assert body["error"]["code"] == "server_error"
    assert body["error"]["reference"] == response[REFERENCE_HEADER]
    assert "hunter2" not in response.content.decode()


@pytest.mark.django_db
def test_every_answer_carries_a_reference(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert len(response[REFERENCE_HEADER]) == 12
