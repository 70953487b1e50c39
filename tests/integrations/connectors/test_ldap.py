"""The LDAP / Active Directory connector against a real OpenLDAP slapd (StartTLS, LDAPS, paging, groups, incremental, deletions)."""

from __future__ import annotations

import secrets
import socket
import uuid

import ldap3
import pytest

from integrations.connectors.ldap import LdapConnector, guid_to_str, normalize_dn
from integrations.errors import ApiForbidden, ApiHostError, ApiNotFound, ApiUnauthorized, UnsafeBaseUrl
from integrations.registry import get_connector_class
from sandbox.vendors._people import people
from tests.integrations.dns_outage import OutageDns
from tests.ldap_server import (
    ADUSERS_BASE,
    GROUPS_BASE,
    PEOPLE_BASE,
    SERVICE_DN,
    SERVICE_PASSWORD,
    SUFFIX,
    SlapdServer,
    shared_server,
)

pytestmark = pytest.mark.ldap

DISABLED_RULE = [{"attribute": "employeeType", "values": ["disabled"]}]

PERSON_KEYS = {
    "external_id",
    "email",
    "name",
    "given_name",
    "family_name",
    "title",
    "department",
    "phone",
    "manager_external_id",
    "groups",
    "is_active",
    "username",
}


@pytest.fixture(scope="session")
def slapd() -> SlapdServer:
    server = shared_server()
    yield server
    server.stop()


def make_connector(server: SlapdServer, *, url: str | None = None, password: str = SERVICE_PASSWORD, **config) -> LdapConnector:
    settings = {
        "server_url": url or server.ldap_url,
        "base_dn": PEOPLE_BASE,
        "group_base_dn": GROUPS_BASE,
        "flavor": "openldap",
        "ca_cert": server.cert_path.read_text(),
        "page_size": 500,
        "disabled_rules": DISABLED_RULE,
        **config,
    }
    return LdapConnector(config=settings, credentials={"bind_dn": SERVICE_DN, "bind_password": password})


def read_all(connector: LdapConnector, entity: str = "users", cursor=None) -> tuple[list[dict], list, list[str]]:
    records, pages, deleted = [], [], []
    for page in connector.iter_all(entity, cursor=cursor):
        records += page.records
        deleted += page.deleted_ids
        pages.append(page)
    return records, pages, deleted


def uuid_of(server: SlapdServer, dn: str) -> str:
    conn = server.admin()
    conn.search(dn, "(objectClass=*)", search_scope=ldap3.BASE, attributes=["entryUUID"])
    value = conn.entries[0].entryUUID.value
    conn.unbind()
    return value


# ------------------------------------------------------------------ connection and bind modes


def test_registry_lists_the_ldap_connector():
    connector = get_connector_class("ldap")
    assert connector.manifest.name == "Active Directory / LDAP"
    assert connector.manifest.category == "directory"


def test_starttls_bind_reports_the_bound_identity(slapd):
    connector = make_connector(slapd)
    result = connector.test_connection()
    assert result.ok is True
    assert result.identity == SERVICE_DN
    assert result.detail["tls"] == "starttls"
    assert connector.connection().tls_started is True


def test_ldaps_bind_works(slapd):
    result = make_connector(slapd, url=slapd.ldaps_url).test_connection()
    assert result.ok is True
    assert result.identity == SERVICE_DN
    assert result.detail["tls"] == "ldaps"


def test_plain_bind_is_refused_unless_allowed(slapd):
    connector = make_connector(slapd, start_tls=False)
    with pytest.raises(ApiForbidden, match="unencrypted"):
        connector.test_connection()
    assert connector._conn is None  # nothing was sent: not even a connection was opened

    allowed = make_connector(slapd, start_tls=False, allow_plain=True)
    result = allowed.test_connection()
    assert result.detail["tls"] == "plain"
    assert allowed.connection().tls_started is False


def test_wrong_password_is_unauthorized(slapd):
    with pytest.raises(ApiUnauthorized, match="invalid credentials"):
        make_connector(slapd, password="not-the-password").test_connection()


def test_empty_password_is_refused_instead_of_binding_anonymously(slapd):
    connector = make_connector(slapd, password="")
    with pytest.raises(ApiUnauthorized):
        connector.test_connection()
    assert connector._conn is None


def test_untrusted_certificate_is_a_tls_failure(slapd):
    connector = make_connector(slapd, ca_cert="")
    with pytest.raises(ApiHostError):
        connector.test_connection()


@pytest.fixture
def dns(monkeypatch) -> OutageDns:
    fake = OutageDns()
    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return fake


def test_private_directory_host_is_refused_unless_the_operator_allows_it(slapd, settings, dns):
    """The SSRF guard covers LDAP: loopback (a literal or a name resolving to it) is refused before any socket opens."""
    settings.BASTION_ALLOW_PRIVATE_BASE_URLS = False
    dns.answer("directory.corp.test", ["10.20.30.40"])
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)
    try:
        port = listener.getsockname()[1]
        for url in (f"ldap://127.0.0.1:{port}", f"ldaps://localhost:{port}", "ldaps://directory.corp.test:636"):
            connector = make_connector(slapd, url=url)
            with pytest.raises(UnsafeBaseUrl, match="private"):
                connector.test_connection()
            assert connector._conn is None
        with pytest.raises(BlockingIOError):
            listener.accept()  # no connection was ever attempted
    finally:
        listener.close()
    settings.BASTION_ALLOW_PRIVATE_BASE_URLS = True
    assert make_connector(slapd).test_connection().ok
    with pytest.raises(UnsafeBaseUrl, match="metadata"):
        make_connector(slapd, url="ldap://169.254.169.254:389").test_connection()


def test_directory_connections_use_the_vetted_answer_and_check_tls_for_the_hostname(slapd, dns):
    """One lookup per connection; a rebinding answer is never connected to; TLS is checked against the configured name."""
    dns.answer("localhost", ["127.0.0.1"], ["169.254.169.254"])  # the slapd certificate names localhost and 127.0.0.1
    connector = make_connector(slapd, url=f"ldaps://localhost:{slapd.ldaps_port}")
    assert connector.test_connection().detail["tls"] == "ldaps"
    assert dns.count("localhost") == 1
    with pytest.raises(UnsafeBaseUrl, match="metadata"):
        make_connector(slapd, url=f"ldap://localhost:{slapd.ldap_port}").test_connection()

    # The pinned address (127.0.0.1) is in the certificate, but the configured name is not: refused, for LDAPS and StartTLS.
    dns.answer("directory.corp.test", ["127.0.0.1"])
    for url in (f"ldaps://directory.corp.test:{slapd.ldaps_port}", f"ldap://directory.corp.test:{slapd.ldap_port}"):
        with pytest.raises(ApiHostError, match="TLS|certificate"):
            make_connector(slapd, url=url).test_connection()


@pytest.mark.parametrize("code", [socket.EAI_AGAIN, socket.EAI_NONAME])
def test_a_directory_name_that_does_not_resolve_is_a_retryable_host_error(slapd, settings, dns, code):
    """A resolver outage is transient (the sync retries it), not an unsafe or misconfigured server URL."""
    settings.BASTION_ALLOW_PRIVATE_BASE_URLS = True
    dns.fail("localhost", code)
    connector = make_connector(slapd, url=f"ldaps://localhost:{slapd.ldaps_port}")
    with pytest.raises(ApiHostError, match="Cannot resolve the host name localhost") as raised:
        connector.test_connection()
    assert not isinstance(raised.value, UnsafeBaseUrl) and raised.value.retryable and raised.value.category == "transient"
    assert raised.value.vendor_code == "dns_resolution_failed" and connector._conn is None
    assert dns.count("localhost") == 1
    dns.answer("localhost", ["127.0.0.1"])  # the resolver is back: the same connector binds
    assert connector.test_connection().detail["tls"] == "ldaps"


def test_missing_base_dn_is_not_found(slapd):
    with pytest.raises(ApiNotFound):
        make_connector(slapd, base_dn=f"ou=nowhere,{SUFFIX}").test_connection()


# ------------------------------------------------------------------ import of the sample directory


def test_discover_fields_reads_the_schema(slapd):
    fields = {f.name: f for f in make_connector(slapd).discover_fields("users")}
    for mapped in ("email", "name", "given_name", "family_name", "title", "department", "phone", "manager_external_id", "groups"):
        assert mapped in fields
    # inetOrgPerson and its superclasses, from the server's subschema
    assert {"mail", "employeeNumber", "telephoneNumber", "manager"} <= set(fields)
    assert fields["sn"].is_required is True
    group_fields = {f.name for f in make_connector(slapd).discover_fields("groups")}
    assert {"name", "members", "member"} <= group_fields


def test_full_import_maps_every_person_and_survives_the_edge_cases(slapd):
    connector = make_connector(slapd)
    records, pages, deleted = read_all(connector)
    assert pages[-1].is_full_scan is True and pages[-1].next_page is None
    assert pages[-1].cursor  # the max entryCSN seen becomes the incremental cursor
    persons = {p["email"] or p["username"]: p for p in (connector.to_bastion("users", r) for r in records)}
    expected = {row["email"] for row in people()}
    assert expected <= set(persons)
    assert len(records) == 22  # 20 people + the person without email + "Smith, John"; the disabled account is excluded
    assert "former.employee@acme.example" not in persons
    assert deleted == [uuid_of(slapd, f"uid=former.employee,{PEOPLE_BASE}")]

    assert all(set(p) == PERSON_KEYS for p in persons.values())  # the contracts' person shape
    chloe = persons["chloe.dubois@acme.example"]
    assert chloe["name"] == "Chloé Dubois" and chloe["given_name"] == "Chloé"
    assert persons["hannah.muller@acme.example"]["family_name"] == "Müller"
    assert chloe["title"] == "Press Officer" and chloe["department"] == "Communications"
    assert chloe["manager_external_id"] == persons["liam.novak@acme.example"]["external_id"]
    assert chloe["is_active"] is True and chloe["username"] == "chloe.dubois"
    assert chloe["phone"].startswith("+1 555")

    no_email = persons["no.email"]
    assert no_email["email"] == "" and no_email["name"] == "Nadia Noemail"

    smith = persons["john.smith@acme.example"]
    assert smith["name"] == "Smith, John"
    raw_smith = next(r for r in records if r["external_id"] == smith["external_id"])
    assert normalize_dn(raw_smith["dn"]) == normalize_dn(f"cn=Smith\\, John,{PEOPLE_BASE}")  # the server answers "Smith\\2C John"
    # the manager lives outside the search base: still resolved, and the import did not break
    assert smith["manager_external_id"] == uuid_of(slapd, f"uid=outside.manager,ou=contractors,{SUFFIX}")
    assert persons["ava.chen@acme.example"]["manager_external_id"] == ""
    assert len({p["external_id"] for p in persons.values()}) == len(persons)


def test_nested_groups_are_expanded_with_cycle_protection(slapd):
    records, _, _ = read_all(make_connector(slapd))
    groups = {r["attributes"]["mail"][0] if r["attributes"].get("mail") else r["dn"]: r["groups"] for r in records}
    assert groups["emma.rossi@acme.example"] == ["crisis-team", "everyone", "security"]
    assert groups["john.smith@acme.example"] == ["crisis-team", "everyone", "security"]  # member by escaped DN
    assert groups["hannah.muller@acme.example"] == ["everyone"]
    assert groups["yuki.tanaka@acme.example"] == ["engineering", "everyone"]
    assert groups["noah.fischer@acme.example"] == ["cycle-a", "cycle-b"]  # cycle-a ⊂ cycle-b ⊂ cycle-a terminates
    assert groups["daniel.kim@acme.example"] == []


def test_nested_expansion_can_be_turned_off(slapd):
    records, _, _ = read_all(make_connector(slapd, nested_groups="off"))
    emma = next(r for r in records if r["attributes"].get("uid") == ["emma.rossi"])
    assert emma["groups"] == ["security"]


def test_org_chart_follows_manager_chains(slapd):
    connector = make_connector(slapd)
    records, _, _ = read_all(connector)
    by_email = {connector.to_bastion("users", r)["email"]: r["external_id"] for r in records}
    chains = connector.org_chart([connector.to_bastion("users", r) for r in records])
    ethan = chains[by_email["ethan.walker@acme.example"]]
    assert ethan == [by_email["noah.fischer@acme.example"], by_email["sofia.garcia@acme.example"], by_email["ava.chen@acme.example"]]
    assert chains[by_email["ava.chen@acme.example"]] == []


def test_groups_entity_lists_direct_members_by_external_id(slapd):
    connector = make_connector(slapd)
    records, pages, _ = read_all(connector, "groups")
    assert pages[-1].is_full_scan is True
    groups = {connector.to_bastion("groups", r)["name"]: connector.to_bastion("groups", r) for r in records}
    assert set(groups) == {"security", "legal", "crisis-team", "engineering", "everyone", "cycle-a", "cycle-b"}
    assert groups["security"]["external_id"] in groups["crisis-team"]["members"]
    assert uuid_of(slapd, f"cn=Smith\\, John,{PEOPLE_BASE}") in groups["security"]["members"]
    assert len(groups["crisis-team"]["members"]) == 5


# ------------------------------------------------------------------ incremental sync and deletions (isolated OU per test)


@pytest.fixture
def scratch_ou(slapd):
    ou = f"ou=t{secrets.token_hex(4)},ou=scratch,{SUFFIX}"
    entries = [(ou, {"objectClass": ["organizationalUnit"], "ou": ou.split(",")[0][3:]})]
    for index in range(5):
        entries.append(
            (
                f"uid=p{index},{ou}",
                {"objectClass": ["inetOrgPerson"], "uid": f"p{index}", "cn": f"Person {index}", "sn": f"P{index}", "mail": f"p{index}@acme.example"},
            )
        )
    slapd.add_entries(entries)
    return ou


def test_incremental_read_returns_only_the_changed_entry(slapd, scratch_ou):
    connector = make_connector(slapd, base_dn=scratch_ou)
    records, pages, _ = read_all(connector)
    assert len(records) == 5
    cursor = pages[-1].cursor

    conn = slapd.admin()
    conn.modify(f"uid=p3,{scratch_ou}", {"title": [(ldap3.MODIFY_REPLACE, ["Promoted"])]})
    conn.unbind()

    changed, pages, _ = read_all(make_connector(slapd, base_dn=scratch_ou), cursor=cursor)
    assert [r["attributes"]["uid"] for r in changed] == [["p3"]]
    assert changed[0]["attributes"]["title"] == ["Promoted"]
    assert pages[-1].is_full_scan is False
    assert pages[-1].cursor > cursor

    nothing, pages, _ = read_all(make_connector(slapd, base_dn=scratch_ou), cursor=pages[-1].cursor)
    assert nothing == [] and pages[-1].cursor is None  # no change: the stored cursor stays


def test_deletions_are_detected_by_full_scans_and_disablement_by_incremental_reads(slapd, scratch_ou):
    connector = make_connector(slapd, base_dn=scratch_ou)
    before, pages, _ = read_all(connector)
    cursor = pages[-1].cursor
    ids = {r["attributes"]["uid"][0]: r["external_id"] for r in before}

    conn = slapd.admin()
    conn.delete(f"uid=p1,{scratch_ou}")
    conn.modify(f"uid=p2,{scratch_ou}", {"employeeType": [(ldap3.MODIFY_ADD, ["disabled"])]})
    conn.unbind()

    changed, pages, deleted = read_all(make_connector(slapd, base_dn=scratch_ou), cursor=cursor)
    assert changed == [] and deleted == [ids["p2"]]
    assert pages[-1].is_full_scan is False

    after, pages, deleted = read_all(make_connector(slapd, base_dn=scratch_ou))
    assert pages[-1].is_full_scan is True
    assert {r["external_id"] for r in after} == {ids["p0"], ids["p3"], ids["p4"]}
    assert deleted == [ids["p2"]]


# ------------------------------------------------------------------ paging at scale


def test_paged_import_of_ten_thousand_entries_is_complete_without_duplicates(slapd):
    bulk = f"ou=bulk,{SUFFIX}"
    # The directory caps unpaged searches at 500 entries: paging is what makes a complete import possible.
    conn = ldap3.Connection(ldap3.Server("127.0.0.1", port=slapd.ldap_port, get_info=ldap3.NONE), SERVICE_DN, SERVICE_PASSWORD, auto_bind=True)
    conn.search(bulk, "(objectClass=inetOrgPerson)", attributes=["1.1"])
    assert len(conn.entries) == 500 and conn.result["description"] == "sizeLimitExceeded"
    conn.unbind()

    connector = make_connector(slapd, base_dn=bulk)
    records, pages, _ = read_all(connector)
    ids = [r["external_id"] for r in records]
    assert len(pages) == 20 and all(len(p.records) == 500 for p in pages)
    assert all(p.is_full_scan for p in pages) and all(p.cursor is None for p in pages[:-1])
    assert len(ids) == 10_000 == len(set(ids))
    emails = {r["attributes"]["mail"][0] for r in records}
    assert len(emails) == 10_000
    report = next(r for r in records if r["attributes"]["uid"] == ["user00051"])
    manager = next(r for r in records if r["attributes"]["uid"] == ["user00050"])
    assert report["manager_external_id"] == manager["external_id"]


def test_paging_resumes_on_a_new_connection_without_duplicates(slapd):
    mid = f"ou=mid,{SUFFIX}"  # 1,500 entries
    first = make_connector(slapd, base_dn=mid, page_size=400)
    page_one = first.read("users")
    page_two = first.read("users", page=page_one.next_page)
    first.close()
    # A worker that died: another connector instance continues from the stored page position.
    second = make_connector(slapd, base_dn=mid, page_size=400)
    seen = [r["external_id"] for r in page_one.records + page_two.records]
    page = second.read("users", page=page_two.next_page)
    seen += [r["external_id"] for r in page.records]
    while page.next_page is not None:
        page = second.read("users", page=page.next_page)
        seen += [r["external_id"] for r in page.records]
    assert len(seen) == 1_500 == len(set(seen))


def test_next_page_in_the_same_process_adopts_the_open_connection(slapd):
    """The sync engine builds a connector per page: the paged search continues on the parked connection, no replay."""
    mid = f"ou=mid,{SUFFIX}"
    first = make_connector(slapd, base_dn=mid, page_size=600)
    page = first.read("users")
    seen = [r["external_id"] for r in page.records]
    connections = {id(first._conn)}
    while page.next_page is not None:
        following = make_connector(slapd, base_dn=mid, page_size=600)
        page = following.read("users", page=page.next_page)
        connections.add(id(following._conn))
        seen += [r["external_id"] for r in page.records]
    assert len(seen) == 1_500 == len(set(seen))
    assert len(connections) == 1  # every page ran on the first connection

    other_account = make_connector(slapd, base_dn=mid, page_size=600, user_filter="(uid=*)")
    start = make_connector(slapd, base_dn=mid, page_size=600).read("users")
    resumed = other_account.read("users", page=start.next_page)  # a different search never adopts it: replayed instead
    assert len(resumed.records) == 600 and other_account._session != start.next_page["session"]


# ------------------------------------------------------------------ Active Directory flavor


def ad_connector(server: SlapdServer, **config) -> LdapConnector:
    return make_connector(
        server,
        base_dn=ADUSERS_BASE,
        flavor="ad",
        user_filter="(objectClass=bastionAdUser)",  # slapd has no objectCategory; real AD uses the default
        group_filter="(objectClass=groupOfNames)",
        nested_groups="client",  # slapd does not implement LDAP_MATCHING_RULE_IN_CHAIN
        disabled_rules=None,
        **config,
    )


def test_active_directory_flavor_maps_ad_attributes(slapd):
    connector = ad_connector(slapd)
    records, pages, deleted = read_all(connector)
    persons = {p["username"]: p for p in (connector.to_bastion("users", r) for r in records)}
    assert set(persons) == {"jdoe", "rroe"}  # userAccountControl 514 (ACCOUNTDISABLE) is excluded
    assert deleted == [str(uuid.uuid5(uuid.NAMESPACE_DNS, "disabled1"))]
    jane = persons["jdoe"]
    assert jane["external_id"] == guid_to_str(uuid.uuid5(uuid.NAMESPACE_DNS, "jdoe").bytes_le) == str(uuid.uuid5(uuid.NAMESPACE_DNS, "jdoe"))
    assert jane["department"] == "Finance" and jane["email"] == "jane.doe@acme.example" and jane["name"] == "Jane Doe"
    assert persons["rroe"]["manager_external_id"] == jane["external_id"]
    assert pages[-1].cursor == "103"  # max uSNChanged seen


def test_active_directory_incremental_by_usn_changed(slapd):
    conn = slapd.admin()
    conn.modify(f"cn=Richard Roe,{ADUSERS_BASE}", {"uSNChanged": [(ldap3.MODIFY_REPLACE, ["250"])], "title": [(ldap3.MODIFY_REPLACE, ["Lead"])]})
    conn.unbind()
    records, pages, _ = read_all(ad_connector(slapd), cursor="103")
    assert [ad_connector(slapd).to_bastion("users", r)["title"] for r in records] == ["Lead"]
    assert pages[-1].cursor == "250"
    records, pages, _ = read_all(ad_connector(slapd), cursor="250")
    assert records == [] and pages[-1].cursor is None


@pytest.mark.django_db
def test_ldap_through_a_stored_integration(slapd, organization):
    from integrations.models import CredentialType, IntegrationStatus
    from integrations.services import build_connector, integration_connect

    integration = integration_connect(
        organization=organization,
        connector_key="ldap",
        credential_type=CredentialType.SERVICE_ACCOUNT,
        credentials={"bind_dn": SERVICE_DN, "bind_password": SERVICE_PASSWORD},
        config={"server_url": slapd.ldaps_url, "base_dn": PEOPLE_BASE, "flavor": "openldap", "ca_cert": slapd.cert_path.read_text()},
    )
    integration.refresh_from_db()
    assert integration.status == IntegrationStatus.CONNECTED and integration.external_account_id == PEOPLE_BASE
    records, _, _ = read_all(build_connector(integration))
    assert len(records) == 23  # without the employeeType rule the "former employee" is an ordinary entry


def test_import_matches_the_recorded_people(slapd):
    """Golden file: every mapped field of the sample directory (managers shown by email)."""
    import json
    from pathlib import Path

    expected = json.loads((Path(__file__).parent / "fixtures" / "ldap" / "expected_people.json").read_text())
    connector = make_connector(slapd)
    records, _, _ = read_all(connector)
    persons = [connector.to_bastion("users", r) for r in records]
    by_id = {p["external_id"]: p for p in persons}
    actual = []
    for person in sorted(persons, key=lambda p: p["username"] or p["name"]):
        manager = by_id.get(person["manager_external_id"])
        row = {k: v for k, v in person.items() if k not in ("external_id", "manager_external_id")}
        row["manager"] = (manager["email"] or manager["username"]) if manager else ("(outside the search base)" if person["manager_external_id"] else "")
        actual.append(row)
    assert actual == expected


@pytest.mark.django_db
def test_the_sync_engine_imports_the_directory_page_by_page(slapd, organization, django_capture_on_commit_callbacks):
    """The real sync engine (a connector per page, eager tasks) over 1,500 slapd entries, then an incremental run."""
    from integrations.models import CredentialType
    from integrations.services import integration_connect
    from sync.models import DataSyncJob, JobStatus, SyncRecord
    from sync.services.jobs import data_sources_ensure, sync_start

    integration = integration_connect(
        organization=organization,
        connector_key="ldap",
        credential_type=CredentialType.SERVICE_ACCOUNT,
        credentials={"bind_dn": SERVICE_DN, "bind_password": SERVICE_PASSWORD},
        config={"server_url": slapd.ldap_url, "base_dn": f"ou=mid,{SUFFIX}", "flavor": "openldap", "ca_cert": slapd.cert_path.read_text(), "page_size": 400},
    )
    source = next(s for s in data_sources_ensure(integration=integration) if s.entity_type == "users")
    with django_capture_on_commit_callbacks(execute=True):
        job = sync_start(data_source=source, full_refresh=True)
    job = DataSyncJob.objects.get(pk=job.pk)
    assert job.status == JobStatus.SUCCEEDED and job.pages == 4 and job.created_count == 1_500
    assert SyncRecord.objects.filter(integration=integration, entity_type="users", is_deleted=False).count() == 1_500
    source.refresh_from_db()
    assert source.cursor  # the server's contextCSN

    conn = slapd.admin()
    conn.modify(f"uid=user00007,ou=mid,{SUFFIX}", {"title": [(ldap3.MODIFY_REPLACE, ["Principal Engineer"])]})
    conn.unbind()
    with django_capture_on_commit_callbacks(execute=True):
        job = sync_start(data_source=source)
    job = DataSyncJob.objects.get(pk=job.pk)
    assert job.status == JobStatus.SUCCEEDED and job.records_processed == 1 and job.updated_count == 1
    record = SyncRecord.objects.get(integration=integration, entity_type="users", raw__attributes__uid=["user00007"])
    assert record.data["title"] == "Principal Engineer"
