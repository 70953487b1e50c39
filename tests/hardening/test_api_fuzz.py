"""Schemathesis against the project's own OpenAPI schema, as a user of each role: no 500s, no off-schema answers."""

from __future__ import annotations

import os

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error, response_schema_conformance, status_code_conformance

from accounts.models import Role
from bastion_site.wsgi import application

# 4 per operation and role keeps CI at a few minutes on a shared 2-core runner (about 6.5 minutes measured); a deeper run:
# BASTION_FUZZ_EXAMPLES=50 pytest tests/hardening/test_api_fuzz.py
MAX_EXAMPLES_PER_OPERATION = int(os.environ.get("BASTION_FUZZ_EXAMPLES", "4"))
# Vendor webhooks take raw vendor bodies, not the project's JSON; they are fuzzed in test_webhook_hardening.
EXCLUDED_PATHS = r"^/api/webhooks/"

schema = schemathesis.openapi.from_dict(SchemaGenerator().get_schema(request=None, public=True)).exclude(path_regex=EXCLUDED_PATHS)


@pytest.fixture
def role_tokens(users_by_role, settings):
    settings.BASTION_ALLOW_PRIVATE_BASE_URLS = False  # fuzzed base URLs must not reach anything
    # The WSGI handler would close the test's database connection after each request (as Django's test client avoids).
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield {role: Token.objects.create(user=user).key for role, user in users_by_role.items()}
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.mark.django_db
@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES_PER_OPERATION, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_api_answers_within_schema_for_every_role(case, role_tokens):
    for role in (Role.VIEWER, Role.EDITOR, Role.ADMIN, Role.OWNER):
        response = case.call(app=application, headers={"Authorization": f"Token {role_tokens[role]}"})
        case.validate_response(response, checks=[not_a_server_error, response_schema_conformance, status_code_conformance])
