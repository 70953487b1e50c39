"""Benchmark: import a 10,000-entry OpenLDAP directory through the LDAP connector (time, entries/s, peak memory).

Starts a real slapd (tests/ldap_server.py) with 10,000 inetOrgPerson entries, then streams them page by page through
`LdapConnector.read` + `to_bastion`, as the sync engine does. The reference is a bare ldap3 paged search of the same
entries on the same server in the same run (the cost of the wire alone). Writes benchmarks/results/directory.md.
"""

from __future__ import annotations

import gc
import os
import platform
import resource
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# The connector itself never touches the database, but its SSRF guard reads the operator setting that allows the loopback slapd.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bastion_site.settings")

import django  # noqa: E402

django.setup()

import ldap3  # noqa: E402

from integrations.connectors.ldap import LdapConnector  # noqa: E402
from tests.ldap_server import SERVICE_DN, SERVICE_PASSWORD, SUFFIX, SlapdServer, bulk_ldif  # noqa: E402

ENTRIES = int(os.environ.get("BENCH_DIRECTORY_ENTRIES", 10_000))
PAGE_SIZE = 500
BULK_BASE = f"ou=bulk,{SUFFIX}"


def connector_for(server: SlapdServer) -> LdapConnector:
    return LdapConnector(
        config={
            "server_url": server.ldap_url,
            "base_dn": BULK_BASE,
            "group_base_dn": f"ou=groups,{SUFFIX}",
            "flavor": "openldap",
            "ca_cert": server.cert_path.read_text(),
            "page_size": PAGE_SIZE,
        },
        credentials={"bind_dn": SERVICE_DN, "bind_password": SERVICE_PASSWORD},
    )


def import_through_connector(server: SlapdServer) -> tuple[int, int, int]:
    """Stream every page, transform each record, keep only counts (what a sync holds between pages)."""
    connector = connector_for(server)
    count = pages = with_manager = 0
    for page in connector.iter_all("users"):
        pages += 1
        for record in page.records:
            person = connector.to_bastion("users", record)
            count += 1
            with_manager += bool(person["manager_external_id"])
    connector.close()
    return count, pages, with_manager


def reference_paged_search(server: SlapdServer) -> int:
    """Bare ldap3 paged search over StartTLS: the wire cost without mapping, groups or manager resolution."""
    import ssl

    tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_data=server.cert_path.read_text())
    conn = ldap3.Connection(
        ldap3.Server("127.0.0.1", port=server.ldap_port, tls=tls, get_info=ldap3.NONE),
        SERVICE_DN,
        SERVICE_PASSWORD,
        auto_bind=ldap3.AUTO_BIND_TLS_BEFORE_BIND,
    )
    count = 0
    for _entry in conn.extend.standard.paged_search(BULK_BASE, "(objectClass=inetOrgPerson)", attributes=["*", "entryUUID", "entryCSN"], paged_size=PAGE_SIZE):
        count += 1
    conn.unbind()
    return count


def timed(fn, *args):
    gc.collect()
    started = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - started


def traced_peak(fn, *args) -> int:
    gc.collect()
    tracemalloc.start()
    fn(*args)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def main() -> None:
    started = time.perf_counter()
    server = SlapdServer.start_new(bulk_ldif=bulk_ldif(ENTRIES))
    setup = time.perf_counter() - started
    try:
        reference_count, reference_seconds = timed(reference_paged_search, server)
        (count, pages, with_manager), seconds = timed(import_through_connector, server)
        peak = traced_peak(import_through_connector, server)
        reference_peak = traced_peak(reference_paged_search, server)
    finally:
        server.stop()
    assert count == ENTRIES == reference_count, (count, reference_count)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    lines = [
        "## Directory import (LDAP, 10,000 entries)",
        "",
        f"Real OpenLDAP slapd on loopback, StartTLS, paged results ({PAGE_SIZE} per page), {ENTRIES:,} inetOrgPerson entries with manager DNs "
        f"(one manager per 50 people). Bastion = `LdapConnector.read` page by page + `to_bastion` (group index, manager DN → entryUUID resolution); "
        "reference = a bare ldap3 paged search of the same entries. Peak memory is Python's tracemalloc peak during one full import.",
        "",
        "| | entries | pages | time (s) | entries/s | peak traced memory (MiB) |",
        "|---|---:|---:|---:|---:|---:|",
        f"| Bastion LDAP connector | {count:,} | {pages} | {seconds:.2f} | {count / seconds:,.0f} | {peak / 2**20:.1f} |",
        f"| reference: bare ldap3 paged search | {reference_count:,} | {ENTRIES // PAGE_SIZE} | {reference_seconds:.2f} | "
        f"{reference_count / reference_seconds:,.0f} | {reference_peak / 2**20:.1f} |",
        "",
        f"Every entry imported once ({with_manager:,} with a resolved manager). Server setup (slapadd of {ENTRIES:,} entries + start) took {setup:.2f} s; "
        f"process max RSS {rss_mb:.0f} MiB. Python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs, "
        f"1-minute load average {os.getloadavg()[0]:.1f} at the end of the run (other jobs share the machine: treat times as upper bounds).",
        "",
    ]
    out = Path(os.environ.get("BENCH_RESULTS_DIR") or ROOT / "benchmarks" / "results") / "directory.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
