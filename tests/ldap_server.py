"""A real OpenLDAP slapd for tests and benchmarks: temporary cn=config, TLS (StartTLS + ldaps://), memberof, sample data.

Usage: `shared_server()` returns one running server per test process (sample people, groups, edge cases, AD-shaped
users, 10,000 bulk entries under ou=bulk and 1,500 under ou=mid), stopped at exit; or build your own with
`SlapdServer.start_new(bulk_ldif=...)`, `server.load_sample()`, `server.stop()`. Service account: SERVICE_DN / SERVICE_PASSWORD,
CA certificate: `server.cert_path`.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

SLAPD = os.environ.get("BASTION_SLAPD", "/usr/sbin/slapd")
SLAPADD = os.environ.get("BASTION_SLAPADD", "/usr/sbin/slapadd")
MODULE_PATH = os.environ.get("BASTION_SLAPD_MODULES", "/usr/lib/ldap")
SCHEMA_DIR = os.environ.get("BASTION_SLAPD_SCHEMA", "/etc/ldap/schema")

SUFFIX = "dc=acme,dc=example"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PASSWORD = "root-secret-Pw1"
SERVICE_DN = f"cn=bastion-svc,ou=service,{SUFFIX}"
SERVICE_PASSWORD = "svc-Secret-123"
PEOPLE_BASE = f"ou=people,{SUFFIX}"
GROUPS_BASE = f"ou=groups,{SUFFIX}"
ADUSERS_BASE = f"ou=adusers,{SUFFIX}"
ACCESSLOG_BASE = "cn=accesslog"  # OpenLDAP's accesslog overlay: every write, with a deleted entry's old attributes (entryUUID)

# A few Active Directory attribute names (private OIDs) so the "ad" flavor can be exercised against slapd.
AD_SCHEMA = """dn: cn=bastionad,cn=schema,cn=config
objectClass: olcSchemaConfig
cn: bastionad
olcAttributeTypes: ( 1.3.6.1.4.1.55555.1.1 NAME 'sAMAccountName' EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
olcAttributeTypes: ( 1.3.6.1.4.1.55555.1.2 NAME 'userPrincipalName' EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
olcAttributeTypes: ( 1.3.6.1.4.1.55555.1.3 NAME 'userAccountControl' EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
olcAttributeTypes: ( 1.3.6.1.4.1.55555.1.4 NAME 'department' EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
olcAttributeTypes: ( 1.3.6.1.4.1.55555.1.5 NAME 'objectGUID' EQUALITY octetStringMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.40 SINGLE-VALUE )
olcAttributeTypes: ( 1.3.6.1.4.1.55555.1.6 NAME 'uSNChanged' EQUALITY integerMatch ORDERING integerOrderingMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
olcAttributeTypes: ( 1.3.6.1.4.1.55555.1.7 NAME 'accountExpires' EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
olcObjectClasses: ( 1.3.6.1.4.1.55555.2.1 NAME 'bastionAdUser' SUP top AUXILIARY MAY ( sAMAccountName $ userPrincipalName $ userAccountControl $ department $ objectGUID $ uSNChanged $ accountExpires ) )
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_self_signed_cert(directory: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """Write a self-signed certificate (SAN: 127.0.0.1, localhost) and its key; return (cert, key) paths."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(host))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


def config_ldif(root: Path, cert: Path, key: Path) -> str:
    """The cn=config tree: modules (mdb, memberof, syncprov, accesslog), schemas, the mdb database with TLS, ACLs and limits, its accesslog."""
    schemas = "\n".join(f"include: file://{SCHEMA_DIR}/{name}.ldif" for name in ("core", "cosine", "inetorgperson", "nis"))
    return f"""dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: {root}/slapd.pid
olcArgsFile: {root}/slapd.args
olcTLSCertificateFile: {cert}
olcTLSCertificateKeyFile: {key}
olcLogLevel: none

dn: cn=module{{0}},cn=config
objectClass: olcModuleList
cn: module{{0}}
olcModulePath: {MODULE_PATH}
olcModuleLoad: back_mdb
olcModuleLoad: memberof
olcModuleLoad: syncprov
olcModuleLoad: accesslog

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

{schemas}

{AD_SCHEMA}
dn: olcDatabase={{-1}}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {{-1}}frontend

dn: olcDatabase={{0}}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {{0}}config
olcAccess: {{0}}to * by * none

dn: olcDatabase={{1}}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {{1}}mdb
olcSuffix: {SUFFIX}
olcRootDN: {ROOT_DN}
olcRootPW: {ROOT_PASSWORD}
olcDbDirectory: {root}/data
olcDbMaxSize: 1073741824
olcDbIndex: objectClass eq
olcDbIndex: entryUUID eq
olcDbIndex: entryCSN eq
olcDbIndex: uid eq
olcDbIndex: member eq
olcSizeLimit: size.soft=500 size.hard=unlimited size.pr=1000 size.prtotal=unlimited
olcAccess: {{0}}to attrs=userPassword by self write by anonymous auth by * none
olcAccess: {{1}}to * by users read by * none

dn: olcOverlay={{0}}memberof,olcDatabase={{1}}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcMemberOf
olcOverlay: {{0}}memberof
olcMemberOfRefInt: TRUE
olcMemberOfGroupOC: groupOfNames
olcMemberOfMemberAD: member
olcMemberOfMemberOfAD: memberOf

dn: olcOverlay={{1}}syncprov,olcDatabase={{1}}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcSyncProvConfig
olcOverlay: {{1}}syncprov
olcSpCheckpoint: 1 1

dn: olcDatabase={{2}}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {{2}}mdb
olcSuffix: {ACCESSLOG_BASE}
olcRootDN: {ROOT_DN}
olcDbDirectory: {root}/accesslog
olcDbMaxSize: 268435456
olcDbIndex: objectClass eq
olcDbIndex: reqStart eq
olcSizeLimit: size.soft=500 size.hard=unlimited size.pr=1000 size.prtotal=unlimited
olcAccess: {{0}}to * by dn.exact="{SERVICE_DN}" read by * none

dn: olcOverlay={{2}}accesslog,olcDatabase={{1}}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcAccessLogConfig
olcOverlay: {{2}}accesslog
olcAccessLogDB: {ACCESSLOG_BASE}
olcAccessLogOps: writes
olcAccessLogSuccess: TRUE
olcAccessLogOld: (objectClass=*)
olcAccessLogPurge: 07+00:00 01+00:00
"""


@dataclass
class SlapdServer:
    """One running slapd on loopback: `ldap_url` (plain/StartTLS) and `ldaps_url`; kill with stop()."""

    root: Path
    ldap_port: int
    ldaps_port: int
    cert_path: Path
    process: subprocess.Popen | None = None
    owns_root: bool = False
    extra: dict = field(default_factory=dict)

    @property
    def ldap_url(self) -> str:
        return f"ldap://127.0.0.1:{self.ldap_port}"

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://127.0.0.1:{self.ldaps_port}"

    @classmethod
    def start_new(cls, root: Path | None = None, *, bulk_ldif: str = "", timeout: float = 15.0) -> SlapdServer:
        """Create config + database in `root` (a temp dir by default), optionally slapadd `bulk_ldif` offline, and start slapd."""
        owns = root is None
        root = Path(root or tempfile.mkdtemp(prefix="bastion-slapd-"))
        (root / "config").mkdir(parents=True, exist_ok=True)
        (root / "data").mkdir(parents=True, exist_ok=True)
        (root / "accesslog").mkdir(parents=True, exist_ok=True)
        cert, key = make_self_signed_cert(root)
        (root / "config.ldif").write_text(config_ldif(root, cert, key))
        _run([SLAPADD, "-n", "0", "-F", str(root / "config"), "-l", str(root / "config.ldif")])
        base = base_ldif()
        (root / "base.ldif").write_text(base + bulk_ldif, encoding="utf-8")
        # slapadd offline is ~50x faster than ldapadd for bulk data (overlays do not run here: bulk data has no groups).
        _run([SLAPADD, "-q", "-n", "1", "-F", str(root / "config"), "-l", str(root / "base.ldif")])
        server = cls(root=root, ldap_port=free_port(), ldaps_port=free_port(), cert_path=cert, owns_root=owns)
        server._launch(timeout)
        return server

    def _launch(self, timeout: float) -> None:
        urls = f"{self.ldap_url}/ {self.ldaps_url}/"
        self.process = subprocess.Popen(
            [SLAPD, "-d", "0", "-h", urls, "-F", str(self.root / "config")],
            stdout=subprocess.DEVNULL,
            stderr=open(self.root / "slapd.log", "wb"),  # noqa: SIM115 - slapd owns this handle until it exits
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"slapd exited with {self.process.returncode}: {(self.root / 'slapd.log').read_text(errors='replace')[-2000:]}")
            if _port_open(self.ldap_port) and _port_open(self.ldaps_port):
                return
            time.sleep(0.02)
        self.stop()
        raise RuntimeError("slapd did not start listening in time")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        if self.owns_root:
            shutil.rmtree(self.root, ignore_errors=True)

    # Data helpers (root DN over StartTLS, through the running server so the memberof overlay applies).
    def admin(self):
        import ssl

        import ldap3

        tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=str(self.cert_path))
        server = ldap3.Server("127.0.0.1", port=self.ldap_port, tls=tls, get_info=ldap3.NONE)
        conn = ldap3.Connection(server, ROOT_DN, ROOT_PASSWORD, raise_exceptions=True, auto_bind=ldap3.AUTO_BIND_TLS_BEFORE_BIND)
        return conn

    def add_entries(self, entries: Iterable[tuple[str, dict]]) -> None:
        conn = self.admin()
        try:
            for dn, attributes in entries:
                conn.add(dn, attributes=attributes)
        finally:
            conn.unbind()

    def load_sample(self) -> dict:
        """Load the shared 20 people, groups (one nested) and the edge cases; return what the tests need to know."""
        entries = sample_entries()
        self.add_entries(entries)
        self.extra["sample"] = {dn: attrs for dn, attrs in entries}
        return self.extra["sample"]


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _run(command: list[str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:3])} failed ({result.returncode}): {result.stderr[-2000:]}")


def base_ldif() -> str:
    """The suffix, the OUs and the service account (userPassword stored as given; slapd accepts cleartext for simple bind)."""
    ous = ["people", "groups", "service", "contractors", "adusers", "bulk", "mid", "scratch"]
    parts = [f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: acme\no: Acme\n"]
    for ou in ous:
        parts.append(f"dn: ou={ou},{SUFFIX}\nobjectClass: organizationalUnit\nou: {ou}\n")
    parts.append(f"dn: {SERVICE_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: bastion-svc\nuserPassword: {SERVICE_PASSWORD}\n")
    return "\n".join(parts) + "\n"


def uid_of(email: str) -> str:
    return email.split("@", 1)[0]


def person_dn(email: str) -> str:
    return f"uid={uid_of(email)},{PEOPLE_BASE}"


def sample_entries() -> list[tuple[str, dict]]:
    """The 20 shared people plus edge cases, in an order that satisfies references (managers before reports)."""
    from sandbox.vendors._people import people

    rows = people()
    entries: list[tuple[str, dict]] = []
    # A manager outside the search base (ou=contractors) for one edge-case person.
    entries.append(
        (
            f"uid=outside.manager,ou=contractors,{SUFFIX}",
            {"objectClass": ["inetOrgPerson"], "uid": "outside.manager", "cn": "Olga Outside", "sn": "Outside", "mail": "olga.outside@partner.example"},
        )
    )
    for row in rows:
        attrs = {
            "objectClass": ["inetOrgPerson"],
            "uid": uid_of(row["email"]),
            "cn": row["name"],
            "givenName": row["given_name"],
            "sn": row["family_name"],
            "displayName": row["name"],
            "mail": row["email"],
            "title": row["title"],
            "departmentNumber": row["department"],
            "telephoneNumber": f"+1 555 01{row['index']:02d}",
        }
        if row["manager_email"]:
            attrs["manager"] = person_dn(row["manager_email"])
        entries.append((person_dn(row["email"]), attrs))
    # Edge cases: a disabled account, a person without email, an escaped DN, a manager outside the base.
    entries.append(
        (
            f"uid=former.employee,{PEOPLE_BASE}",
            {
                "objectClass": ["inetOrgPerson", "bastionAdUser"],
                "uid": "former.employee",
                "cn": "Former Employee",
                "sn": "Employee",
                "mail": "former.employee@acme.example",
                "userAccountControl": "514",
                "employeeType": "disabled",
            },
        )
    )
    entries.append(
        (f"uid=no.email,{PEOPLE_BASE}", {"objectClass": ["inetOrgPerson"], "uid": "no.email", "cn": "Nadia Noemail", "givenName": "Nadia", "sn": "Noemail"})
    )
    entries.append(
        (
            f"cn=Smith\\, John,{PEOPLE_BASE}",
            {
                "objectClass": ["inetOrgPerson"],
                "cn": "Smith, John",
                "givenName": "John",
                "sn": "Smith",
                "mail": "john.smith@acme.example",
                "manager": f"uid=outside.manager,ou=contractors,{SUFFIX}",
            },
        )
    )
    email = {r["email"]: r for r in rows}
    dn = person_dn
    groups = [
        ("security", ["marcus.okafor@acme.example", "emma.rossi@acme.example", "zara.ahmed@acme.example"], []),
        ("legal", ["priya.raman@acme.example", "omar.haddad@acme.example"], []),
        ("crisis-team", ["ava.chen@acme.example", "liam.novak@acme.example", "chloe.dubois@acme.example"], ["security", "legal"]),
        ("engineering", [r["email"] for r in rows if r["department"] == "Engineering"], []),
        ("everyone", ["hannah.muller@acme.example"], ["crisis-team", "engineering"]),
    ]
    for name, members, subgroups in groups:
        member_dns = [dn(m) for m in members if m in email] + [f"cn={g},{GROUPS_BASE}" for g in subgroups]
        if name == "security":
            member_dns.append(f"cn=Smith\\, John,{PEOPLE_BASE}")
        entries.append((f"cn={name},{GROUPS_BASE}", {"objectClass": ["groupOfNames"], "cn": name, "member": member_dns}))
    # A membership cycle (cycle-a ⊂ cycle-b ⊂ cycle-a): expansion must terminate.
    entries.append((f"cn=cycle-a,{GROUPS_BASE}", {"objectClass": ["groupOfNames"], "cn": "cycle-a", "member": [dn("noah.fischer@acme.example")]}))
    entries.append(
        (
            f"cn=cycle-b,{GROUPS_BASE}",
            {"objectClass": ["groupOfNames"], "cn": "cycle-b", "member": [dn("ethan.walker@acme.example"), f"cn=cycle-a,{GROUPS_BASE}"]},
        )
    )
    return entries


def close_cycle(server: SlapdServer) -> None:
    """Add cycle-b as a member of cycle-a (after both exist)."""
    import ldap3

    conn = server.admin()
    try:
        conn.modify(f"cn=cycle-a,{GROUPS_BASE}", {"member": [(ldap3.MODIFY_ADD, [f"cn=cycle-b,{GROUPS_BASE}"])]})
    finally:
        conn.unbind()


def ad_user_entries() -> list[tuple[str, dict]]:
    """Entries shaped like Active Directory users (sAMAccountName, UPN, userAccountControl, objectGUID, uSNChanged)."""
    rows = [
        ("jdoe", "Jane Doe", "Jane", "Doe", "jane.doe@acme.example", 512, "Finance", 101),
        ("rroe", "Richard Roe", "Richard", "Roe", "richard.roe@acme.example", 512, "Sales", 102),
        ("disabled1", "Dis Abled", "Dis", "Abled", "dis.abled@acme.example", 514, "Sales", 103),
    ]
    entries = []
    for sam, cn, given, family, mail, uac, department, usn in rows:
        attrs = {
            "objectClass": ["inetOrgPerson", "bastionAdUser"],
            "cn": cn,
            "givenName": given,
            "sn": family,
            "displayName": cn,
            "mail": mail,
            "sAMAccountName": sam,
            "userPrincipalName": f"{sam}@corp.acme.example",
            "userAccountControl": str(uac),
            "department": department,
            "title": "Analyst",
            "objectGUID": uuid.uuid5(uuid.NAMESPACE_DNS, sam).bytes_le,
            "uSNChanged": str(usn),
        }
        if sam == "rroe":
            attrs["manager"] = f"cn=Jane Doe,{ADUSERS_BASE}"
        entries.append((f"cn={cn},{ADUSERS_BASE}", attrs))
    return entries


def bulk_ldif(count: int, base: str = f"ou=bulk,{SUFFIX}", managers_every: int = 50) -> str:
    """LDIF for `count` inetOrgPerson entries under `base` (every entry's manager is the first of its block)."""
    lines: list[str] = []
    for index in range(count):
        manager = index - (index % managers_every)
        block = [
            f"dn: uid=user{index:05d},{base}",
            "objectClass: inetOrgPerson",
            f"uid: user{index:05d}",
            f"cn: Bulk User {index:05d}",
            "givenName: Bulk",
            f"sn: User {index:05d}",
            f"mail: user{index:05d}@bulk.acme.example",
            "title: Engineer",
            f"departmentNumber: Dept {index % 40}",
            f"telephoneNumber: +1 555 {index:07d}",
        ]
        if manager != index:
            block.append(f"manager: uid=user{manager:05d},{base}")
        lines.append("\n".join(block))
    return "\n\n".join(lines) + "\n"


_SHARED: SlapdServer | None = None


def shared_server(bulk_count: int = 10_000) -> SlapdServer:
    """One slapd per test process with the sample data and `bulk_count` entries under ou=bulk; stopped at exit."""
    global _SHARED
    if _SHARED is not None and (_SHARED.process is None or _SHARED.process.poll() is not None):
        _SHARED = None  # stopped by an earlier fixture's teardown: start a fresh one
    if _SHARED is None:
        import atexit

        server = SlapdServer.start_new(bulk_ldif=(bulk_ldif(bulk_count) if bulk_count else "") + "\n" + bulk_ldif(1500, base=f"ou=mid,{SUFFIX}"))
        try:
            server.load_sample()
            close_cycle(server)
            server.add_entries(ad_user_entries())
        except Exception:
            server.stop()
            raise
        atexit.register(server.stop)
        _SHARED = server
    return _SHARED
