"""An incremental LDAP run against a directory nothing was written to reads nothing (the server's high-water mark equals
the cursor); any write, or a rule that reads the clock, makes it read and scan as before. Real slapd."""

from __future__ import annotations

import secrets

import ldap3
import pytest

from tests.integrations.connectors.test_ldap import make_connector, read_all, slapd  # noqa: F401 - slapd: the session fixture
from tests.ldap_server import SUFFIX

pytestmark = pytest.mark.ldap


@pytest.fixture
def small_ou(slapd):  # noqa: F811
    """Three people and two groups of them in a fresh OU."""
    ou = f"ou=u{secrets.token_hex(4)},ou=scratch,{SUFFIX}"
    people = [
        (f"uid=q{i},{ou}", {"objectClass": ["inetOrgPerson"], "uid": f"q{i}", "cn": f"Q {i}", "sn": f"q{i}", "mail": f"q{i}@acme.example"}) for i in range(3)
    ]
    groups = [(f"cn=g{i},{ou}", {"objectClass": ["groupOfNames"], "cn": f"g{i}", "member": [f"uid=q{i},{ou}", f"uid=q{i + 1},{ou}"]}) for i in range(2)]
    slapd.add_entries([(ou, {"objectClass": ["organizationalUnit"], "ou": ou.split(",")[0][3:]}), *people, *groups])
    return ou


def connector_for(slapd, ou, **config):  # noqa: F811
    return make_connector(slapd, base_dn=ou, group_base_dn=ou, deletion_detection="scan", **config)


def write(slapd, dn, **changes):  # noqa: F811
    conn = slapd.admin()
    try:
        conn.modify(dn, {name: [(ldap3.MODIFY_REPLACE, [value])] for name, value in changes.items()})
    finally:
        conn.unbind()


def test_users_incremental_reads_nothing_until_something_is_written(slapd, small_ou):  # noqa: F811
    _, pages, _ = read_all(connector_for(slapd, small_ou))
    cursor = pages[-1].cursor
    assert cursor  # OpenLDAP's contextCSN when the run began

    unchanged, pages, deleted = read_all(connector_for(slapd, small_ou), cursor=cursor)
    assert unchanged == [] and deleted == [] and len(pages) == 1
    assert pages[-1].present_ids is None and pages[-1].cursor is None  # nothing scanned; the cursor stays

    write(slapd, f"uid=q1,{small_ou}", title="Changed")
    changed, pages, _ = read_all(connector_for(slapd, small_ou), cursor=cursor)
    assert [r["attributes"]["uid"][0] for r in changed] == ["q1"]
    assert len(pages[-1].present_ids) == 3 and pages[-1].cursor not in (None, cursor)  # the scan ran again


def test_a_write_outside_the_base_still_makes_the_run_read(slapd, small_ou):  # noqa: F811
    """The mark covers the whole naming context: a write elsewhere costs a read that finds nothing, never a missed change."""
    _, pages, _ = read_all(connector_for(slapd, small_ou))
    elsewhere = f"ou=e{secrets.token_hex(4)},ou=scratch,{SUFFIX}"
    slapd.add_entries([(elsewhere, {"objectClass": ["organizationalUnit"], "ou": elsewhere.split(",")[0][3:]})])

    records, pages, _ = read_all(connector_for(slapd, small_ou), cursor=pages[-1].cursor)
    assert records == [] and len(pages[-1].present_ids) == 3


def test_a_rule_that_reads_the_clock_reads_every_run(slapd, small_ou):  # noqa: F811
    rules = [{"attribute": "shadowExpire", "expires": True}]
    _, pages, _ = read_all(connector_for(slapd, small_ou, disabled_rules=rules))
    records, pages, _ = read_all(connector_for(slapd, small_ou, disabled_rules=rules), cursor=pages[-1].cursor)
    assert records == [] and len(pages[-1].present_ids) == 3  # an account may have expired without any write


def test_groups_incremental_reads_nothing_unchanged_and_lists_every_group_after_a_write(slapd, small_ou):  # noqa: F811
    groups, pages, _ = read_all(connector_for(slapd, small_ou), "groups")
    assert sorted(g["attributes"]["cn"][0] for g in groups) == ["g0", "g1"] and pages[-1].present_ids is None
    cursor = pages[-1].cursor
    assert cursor

    unchanged, pages, _ = read_all(connector_for(slapd, small_ou), "groups", cursor=cursor)
    assert unchanged == [] and len(pages) == 1 and pages[-1].cursor is None

    conn = slapd.admin()
    try:
        conn.delete(f"cn=g1,{small_ou}")
    finally:
        conn.unbind()
    after, pages, _ = read_all(connector_for(slapd, small_ou), "groups", cursor=cursor)
    assert [g["attributes"]["cn"][0] for g in after] == ["g0"]
    assert pages[-1].present_ids == [after[0]["external_id"]]  # the engine retires g1: it is not among the ids present


def test_groups_paged_incremental_lists_ids_of_every_page(slapd, small_ou):  # noqa: F811
    _, pages, _ = read_all(connector_for(slapd, small_ou), "groups")
    write(slapd, f"cn=g0,{small_ou}", description="touched")
    groups, pages, _ = read_all(connector_for(slapd, small_ou, page_size=1), "groups", cursor=pages[-1].cursor)
    assert len(pages) == 2 and pages[0].present_ids is None
    assert sorted(pages[-1].present_ids) == sorted(g["external_id"] for g in groups)


@pytest.mark.django_db
def test_a_full_sync_reading_ahead_stores_every_page_once(slapd, small_ou, organization, settings, django_capture_on_commit_callbacks):  # noqa: F811
    from integrations.models import CredentialType
    from integrations.services import integration_connect
    from people.models import Person
    from sync.models import DataSyncJob, JobStatus
    from sync.services.jobs import data_sources_ensure, sync_start
    from tests.ldap_server import SERVICE_DN, SERVICE_PASSWORD

    settings.BASTION_SYNC_READ_AHEAD = True  # the next page is read in a thread while the current one is written
    config = {"server_url": slapd.ldap_url, "base_dn": small_ou, "group_base_dn": small_ou, "flavor": "openldap", "ca_cert": slapd.cert_path.read_text()}
    integration = integration_connect(
        organization=organization,
        connector_key="ldap",
        credential_type=CredentialType.SERVICE_ACCOUNT,
        credentials={"bind_dn": SERVICE_DN, "bind_password": SERVICE_PASSWORD},
        config={**config, "page_size": 1},
    )
    source = next(s for s in data_sources_ensure(integration=integration) if s.entity_type == "users")
    with django_capture_on_commit_callbacks(execute=True):
        job = sync_start(data_source=source, full_refresh=True)
    job = DataSyncJob.objects.get(pk=job.pk)
    assert job.status == JobStatus.SUCCEEDED and job.pages == 3 and job.created_count == 3
    assert sorted(Person.objects.filter(organization=organization).values_list("email", flat=True)) == [f"q{i}@acme.example" for i in range(3)]
