"""The directory as directories really are, on the real slapd: disabled-account conventions with previews, deletions within one cycle, loose DNs."""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime

import ldap3
import pytest

from integrations.connectors.ldap.rules import FILETIME_EPOCH_OFFSET, repair_dn
from integrations.errors import ApiBadRequest
from tests.integrations.connectors.test_ldap import make_connector, read_all, slapd  # noqa: F401 - slapd: the session fixture
from tests.ldap_server import ACCESSLOG_BASE, ADUSERS_BASE, SERVICE_DN, SERVICE_PASSWORD, SUFFIX

pytestmark = pytest.mark.ldap

CONVENTIONS = [
    {"under": "ou=Disabled"},
    {"attribute": "description", "prefix": "Account disabled"},
    {"attribute": "userAccountControl", "bitmask": 2},
    {"attribute": "accountExpires", "expires": True},
]


def filetime(year: int) -> str:
    return str(int(datetime(year, 1, 1, tzinfo=UTC).timestamp() * 10_000_000) + FILETIME_EPOCH_OFFSET)


def person(uid: str, **extra) -> dict:
    classes = ["inetOrgPerson", "bastionAdUser"] if {"userAccountControl", "accountExpires"} & set(extra) else ["inetOrgPerson"]
    return {"objectClass": classes, "uid": uid, "cn": f"Person {uid}", "sn": uid, "mail": f"{uid}@acme.example", **extra}


@pytest.fixture
def conventions_ou(slapd):  # noqa: F811
    ou = f"ou=c{secrets.token_hex(4)},ou=scratch,{SUFFIX}"
    slapd.add_entries(
        [
            (ou, {"objectClass": ["organizationalUnit"], "ou": ou.split(",")[0][3:]}),
            (f"ou=Disabled,{ou}", {"objectClass": ["organizationalUnit"], "ou": "Disabled"}),
            (f"uid=active1,{ou}", person("active1", description=["Sales lead"])),
            (f"uid=active2,{ou}", person("active2", userAccountControl="512", accountExpires="9223372036854775807")),
            (f"uid=future,{ou}", person("future", accountExpires=filetime(2100))),
            (f"uid=moved,ou=Disabled,{ou}", person("moved")),
            (f"uid=described,{ou}", person("described", description=["Account disabled 2025-03-01 (HR ticket 4411)"])),
            (f"uid=uac,{ou}", person("uac", userAccountControl="514")),
            (f"uid=expired,{ou}", person("expired", accountExpires=filetime(2020))),
        ]
    )
    return ou


def test_common_disabled_conventions_exclude_their_entries(slapd, conventions_ou):  # noqa: F811
    connector = make_connector(slapd, base_dn=conventions_ou, disabled_rules=CONVENTIONS)
    records, _, deleted = read_all(connector)
    assert sorted(r["attributes"]["uid"][0] for r in records) == ["active1", "active2", "future"]
    assert len(deleted) == 4 and all(r["is_disabled"] is False for r in records)

    # Without the conventions (the OpenLDAP defaults) every one of them would be imported as active.
    default, _, _ = read_all(make_connector(slapd, base_dn=conventions_ou, disabled_rules=None))
    assert len(default) == 7


def test_the_preview_counts_what_each_rule_excludes(slapd, conventions_ou):  # noqa: F811
    preview = make_connector(slapd, base_dn=conventions_ou).disabled_rules_preview(CONVENTIONS + [{"attribute": "description", "contains": "sales"}])
    assert (preview["entries"], preview["excluded"]) == (7, 5)
    assert [(rule["label"], rule["excluded"]) for rule in preview["rules"]] == [
        ("the entry is under ou=Disabled", 1),
        ("description starts with 'Account disabled'", 1),
        ("userAccountControl has bit 2 set", 1),
        ("accountExpires is in the past", 1),
        ("description contains 'sales'", 1),
    ]


@pytest.mark.parametrize(
    "rules, message",
    [
        ("ou=Disabled", "reads as none of the forms"),
        (42, "must be a list"),
        ([{"attribute": "description"}], "sets none of"),
        ([{"prefix": "Account disabled"}], "needs the attribute"),
        ([{"attribute": "userAccountControl", "bitmask": "two"}], "bitmask must be an integer"),
        ([{"under": "not a dn at all"}], "neither a DN nor an RDN"),
    ],
)
def test_bad_rules_are_refused_with_the_reason(slapd, rules, message):  # noqa: F811
    with pytest.raises(ApiBadRequest, match=message):
        make_connector(slapd, disabled_rules=rules)


@pytest.mark.django_db
def test_rules_preview_and_save_through_the_api(slapd, conventions_ou, organization, api):  # noqa: F811
    from integrations.models import CredentialType
    from integrations.services import integration_connect

    integration = integration_connect(
        organization=organization,
        connector_key="ldap",
        credential_type=CredentialType.SERVICE_ACCOUNT,
        credentials={"bind_dn": SERVICE_DN, "bind_password": SERVICE_PASSWORD},
        config={"server_url": slapd.ldap_url, "base_dn": conventions_ou, "flavor": "openldap", "ca_cert": slapd.cert_path.read_text()},
    )
    response = api.post(f"/api/integrations/{integration.pk}/disabled-rules/preview", {"rules": CONVENTIONS}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["excluded"] == 4 and [r["excluded"] for r in response.json()["rules"]] == [1, 1, 1, 1]

    bad = api.post(f"/api/integrations/{integration.pk}/disabled-rules/preview", {"rules": [{"attribute": "x"}]}, format="json")
    assert bad.status_code == 400 and "sets none of" in bad.json()["error"]["fields"]["rules"][0]
    refused = api.put(f"/api/integrations/{integration.pk}/config", {"config": {"disabled_rules": [{"under": "???"}]}}, format="json")
    assert refused.status_code == 400 and "disabled_rules" in refused.json()["error"]["fields"]
    integration.refresh_from_db()
    assert "disabled_rules" not in integration.config  # nothing saved
    saved = api.put(f"/api/integrations/{integration.pk}/config", {"config": {"disabled_rules": CONVENTIONS}}, format="json")
    assert saved.status_code == 200, saved.content
    integration.refresh_from_db()
    assert integration.config["disabled_rules"] == CONVENTIONS


# ------------------------------------------------------------------ deletions within one scheduled cycle


@pytest.fixture
def changing_ou(slapd):  # noqa: F811
    ou = f"ou=d{secrets.token_hex(4)},ou=scratch,{SUFFIX}"
    entries = [(ou, {"objectClass": ["organizationalUnit"], "ou": ou.split(",")[0][3:]})]
    entries += [(f"uid=p{index},{ou}", person(f"p{index}")) for index in range(6)]
    entries.append((f"ou={ou.split(',')[0][3:]}x,ou=scratch,{SUFFIX}", {"objectClass": ["organizationalUnit"], "ou": ou.split(",")[0][3:] + "x"}))
    slapd.add_entries(entries)
    return ou


USER_FILTER = "(&(objectClass=inetOrgPerson)(!(employeeType=contractor)))"


def change_directory(slapd, ou: str) -> None:  # noqa: F811
    """Delete p1, move p2 out of the base, take p3 out of the user filter, change p5 (p0 and p4 stay as they are)."""
    conn = slapd.admin()
    try:
        conn.delete(f"uid=p1,{ou}")
        conn.modify_dn(f"uid=p2,{ou}", "uid=p2", new_superior=f"ou={ou.split(',')[0][3:]}x,ou=scratch,{SUFFIX}")
        conn.modify(f"uid=p3,{ou}", {"employeeType": [(ldap3.MODIFY_ADD, ["contractor"])]})
        conn.modify(f"uid=p5,{ou}", {"title": [(ldap3.MODIFY_REPLACE, ["Staff Engineer"])]})
    finally:
        conn.unbind()


@pytest.mark.parametrize("method", ["scan", "accesslog"])
def test_an_incremental_read_reports_deletions_and_moves_out_of_scope(slapd, changing_ou, method):  # noqa: F811
    config = {"base_dn": changing_ou, "user_filter": USER_FILTER, "deletion_detection": method, "accesslog_base": ACCESSLOG_BASE}
    before, pages, _ = read_all(make_connector(slapd, **config))
    ids = {r["attributes"]["uid"][0]: r["external_id"] for r in before}
    cursor = pages[-1].cursor
    change_directory(slapd, changing_ou)

    changed, pages, deleted = read_all(make_connector(slapd, **config), cursor=cursor)

    assert [r["attributes"]["uid"][0] for r in changed] == ["p5"]
    if method == "scan":
        assert deleted == [] and sorted(pages[-1].present_ids) == sorted(ids[u] for u in ("p0", "p4", "p5"))
    else:
        assert sorted(deleted) == sorted(ids[u] for u in ("p1", "p2", "p3")) and pages[-1].present_ids is None
    again, pages, deleted = read_all(make_connector(slapd, **config), cursor=pages[-1].cursor)
    assert again == [] and deleted == [], (again, deleted)
    # Nothing was written since: the server's high-water mark equals the cursor, so nothing is searched or scanned.
    assert len(pages) == 1 and pages[-1].present_ids is None and pages[-1].cursor is None


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["auto", "scan"])
def test_the_scheduled_incremental_sync_retires_deleted_and_moved_people(slapd, changing_ou, organization, django_capture_on_commit_callbacks, method):  # noqa: F811
    """The real engine: a full sync, directory changes, one incremental run → the gone people are deleted and inactive."""
    from integrations.models import CredentialType
    from integrations.services import integration_connect
    from people.models import Person
    from sync.models import DataSyncJob, JobStatus, SyncRecord
    from sync.services.jobs import data_sources_ensure, sync_start

    config = {"server_url": slapd.ldap_url, "base_dn": changing_ou, "flavor": "openldap", "ca_cert": slapd.cert_path.read_text()}
    config.update(user_filter=USER_FILTER, deletion_detection=method, **({"accesslog_base": ACCESSLOG_BASE} if method == "auto" else {}))
    integration = integration_connect(
        organization=organization,
        connector_key="ldap",
        credential_type=CredentialType.SERVICE_ACCOUNT,
        credentials={"bind_dn": SERVICE_DN, "bind_password": SERVICE_PASSWORD},
        config=config,
    )
    source = next(s for s in data_sources_ensure(integration=integration) if s.entity_type == "users")
    with django_capture_on_commit_callbacks(execute=True):
        sync_start(data_source=source, full_refresh=True)
    assert Person.objects.filter(organization=organization, is_active=True).count() == 6
    change_directory(slapd, changing_ou)

    source.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        job = sync_start(data_source=source)
    job = DataSyncJob.objects.get(pk=job.pk)

    assert job.status == JobStatus.SUCCEEDED and job.is_full_refresh is False and job.deleted_count == 3
    gone = {uid[0] for uid in SyncRecord.objects.filter(integration=integration, is_deleted=True).values_list("raw__attributes__uid", flat=True)}
    assert gone == {"p1", "p2", "p3"}
    active = sorted(Person.objects.filter(organization=organization, is_active=True).values_list("email", flat=True))
    assert active == ["p0@acme.example", "p4@acme.example", "p5@acme.example"]


# ------------------------------------------------------------------ DNs written loosely


@pytest.mark.parametrize(
    "loose, strict",
    [
        ("CN=Jane Doe, OU=adusers, DC=acme, DC=example", "CN=Jane Doe,OU=adusers,DC=acme,DC=example"),
        ("cn=Smith\\, John ; ou=people;dc=acme", "cn=Smith\\, John,ou=people,dc=acme"),
        ("uid=a,ou=x", "uid=a,ou=x"),
        ("cn=trailing\\ ,dc=x", "cn=trailing\\ ,dc=x"),
        ("not a dn", None),
        ("=x,ou=y", None),
    ],
)
def test_repair_dn(loose, strict):
    assert repair_dn(loose) == strict


def test_a_loose_dn_is_a_data_problem_of_its_entry_never_a_page_retry(slapd, caplog):  # noqa: F811
    connector = make_connector(
        slapd, base_dn="OU=adusers, DC=acme, DC=example", flavor="ad", user_filter="(objectClass=bastionAdUser)", disabled_rules=None, page_size=2
    )
    records, pages, _ = read_all(connector)  # a settings DN in AD-export form is read in its strict form
    assert sorted(r["attributes"]["sAMAccountName"][0] for r in records) == ["jdoe", "rroe"] and len(pages) == 2

    jane = next(r for r in records if r["attributes"]["sAMAccountName"] == ["jdoe"])
    connector = make_connector(slapd, base_dn=ADUSERS_BASE, flavor="ad", user_filter="(objectClass=bastionAdUser)", disabled_rules=None)
    with caplog.at_level(logging.WARNING):  # a fresh run: nothing cached, the loose DN is looked up on the server
        resolved = connector._resolve_id("CN=Jane Doe, OU=adusers, DC=acme, DC=example", entry_dn="cn=Richard Roe", attribute="manager")
        hopeless = connector._resolve_id("Jane Doe (manager)", entry_dn="cn=Richard Roe", attribute="manager")
    assert resolved == jane["external_id"] and hopeless == ""
    assert [p["problem"] for p in connector.data_problems] == [
        "DN written loosely; read as CN=Jane Doe,OU=adusers,DC=acme,DC=example",
        "not a DN; the reference is left unresolved",
    ]
    assert [r.message for r in caplog.records if r.name.endswith("ldap")] == ["ldap.entry.bad_value", "ldap.entry.bad_value"]
    with pytest.raises(ApiBadRequest, match="is not a DN"):
        make_connector(slapd, base_dn="people of acme").read("users")


@pytest.mark.django_db
def test_the_settings_page_previews_the_rules_before_saving_them(slapd, conventions_ou, organization, users_by_role):  # noqa: F811
    from django.test import Client

    from accounts.models import Role
    from integrations.models import CredentialType
    from integrations.services import build_connector, integration_connect

    integration = integration_connect(
        organization=organization,
        connector_key="ldap",
        credential_type=CredentialType.SERVICE_ACCOUNT,
        credentials={"bind_dn": SERVICE_DN, "bind_password": SERVICE_PASSWORD},
        config={"server_url": slapd.ldap_url, "base_dn": conventions_ou, "flavor": "openldap", "ca_cert": slapd.cert_path.read_text()},
    )
    client = Client()
    client.force_login(users_by_role[Role.ADMIN])
    form = {f"config_{name}": value for name, value in integration.config.items() if isinstance(value, str)}
    wording = "under ou=Disabled; description starts with Account disabled; userAccountControl has bit 2; accountExpires is in the past"

    preview = client.post(f"/integrations/{integration.pk}/setup/", {**form, "config_disabled_rules": wording, "preview_disabled_rules": "1"})
    page = preview.content.decode()
    assert preview.status_code == 200 and 'id="disabled-rules-preview"' in page
    assert "Of 7 directory entries in scope, 4 would be imported as disabled" in page and page.count("<td>1</td>") == 4
    integration.refresh_from_db()
    assert "disabled_rules" not in integration.config  # a preview saves nothing

    unreadable = client.post(f"/integrations/{integration.pk}/setup/", {**form, "config_disabled_rules": "when HR says so", "preview_disabled_rules": "1"})
    assert unreadable.status_code == 400 and "reads as none of the forms" in unreadable.content.decode()

    saved = client.post(f"/integrations/{integration.pk}/setup/", {**form, "config_disabled_rules": wording})
    assert saved.status_code == 302
    integration.refresh_from_db()
    assert integration.config["disabled_rules"] == wording
    records, _, deleted = read_all(build_connector(integration))
    assert sorted(r["attributes"]["uid"][0] for r in records) == ["active1", "active2", "future"] and len(deleted) == 4
    shown = client.get(f"/integrations/{integration.pk}/setup/").content.decode()
    assert "under ou=Disabled; description starts with Account disabled" in shown


@pytest.mark.parametrize("refusal", ["LDAPInvalidDnError", "LDAPInvalidFilterError", "LDAPAttributeError"])
def test_what_ldap3_refuses_client_side_is_a_data_error_never_a_retry(refusal):
    from ldap3.core import exceptions as ldap_exc

    from integrations.connectors.ldap import _ldap_errors

    with pytest.raises(ApiBadRequest) as raised:
        with _ldap_errors("search"):
            raise getattr(ldap_exc, refusal)("character ' ' not allowed in attribute type")
    assert raised.value.category != "transient" and "could not be sent" in raised.value.message
