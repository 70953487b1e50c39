import base64
import io

import pytest
from django.core.management import call_command
from django.db import connection

from common import crypto
from common.crypto import EncryptionKeyError, Keyring
from integrations.models import CredentialType, Integration, IntegrationCredential

SECRET = "xoxb-very-secret-token-4242"


def key(seed: str) -> str:
    return base64.b64encode(seed.encode().ljust(32, b"0")[:32]).decode()


@pytest.fixture
def credential(organization):
    integration = Integration.objects.create(organization=organization, connector_key="slack", display_name="Slack")
    return IntegrationCredential.objects.create(
        organization=organization, integration=integration, credential_type=CredentialType.OAUTH, data={"access_token": SECRET}
    )


def raw_column(credential) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT data FROM integrations_integrationcredential WHERE id = %s", [credential.pk])
        return cursor.fetchone()[0]


def test_column_holds_no_plaintext(credential):
    stored = raw_column(credential)
    assert SECRET not in stored
    assert stored.startswith("v1:test1:")
    assert IntegrationCredential.objects.get(pk=credential.pk).data == {"access_token": SECRET}


def test_ciphertext_is_bound_to_its_row(credential, organization):
    other = IntegrationCredential.objects.create(
        organization=organization, integration=credential.integration, credential_type=CredentialType.API_KEY, data={"k": "v"}
    )
    IntegrationCredential.objects.filter(pk=other.pk).update(data=raw_column(credential))
    with pytest.raises(EncryptionKeyError, match="tampered with or moved"):
        IntegrationCredential.objects.get(pk=other.pk).data  # noqa: B018


def test_rotation_reencrypts_and_old_key_still_decrypts_until_removed(credential, settings):
    old = settings.BASTION_ENCRYPTION_KEYS
    settings.BASTION_ENCRYPTION_KEYS = f"new2:{key('new-primary')},{old}"
    # Old ciphertext stays readable while the old key is in the ring.
    assert IntegrationCredential.objects.get(pk=credential.pk).data == {"access_token": SECRET}
    out = io.StringIO()
    call_command("rotate_credentials_key", stdout=out)
    assert "1 of 1 rows re-encrypted" in out.getvalue()
    assert raw_column(credential).startswith("v1:new2:")
    # Running again changes nothing.
    out = io.StringIO()
    call_command("rotate_credentials_key", stdout=out)
    assert "0 of 1 rows re-encrypted" in out.getvalue()
    # The old key can now be removed.
    settings.BASTION_ENCRYPTION_KEYS = f"new2:{key('new-primary')}"
    assert IntegrationCredential.objects.get(pk=credential.pk).data == {"access_token": SECRET}


def test_wrong_key_fails_loudly(credential, settings):
    settings.BASTION_ENCRYPTION_KEYS = f"test1:{key('an-entirely-different-key')}"
    with pytest.raises(EncryptionKeyError, match="not the one this value was sealed with"):
        IntegrationCredential.objects.get(pk=credential.pk).data  # noqa: B018


def test_missing_key_id_fails_loudly(credential, settings):
    settings.BASTION_ENCRYPTION_KEYS = f"other:{key('x')}"
    with pytest.raises(EncryptionKeyError, match="key id 'test1', which is not in BASTION_ENCRYPTION_KEYS"):
        IntegrationCredential.objects.get(pk=credential.pk).data  # noqa: B018


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "is not set"),
        ("nokey", "must look like"),
        ("k1:not base64!", "not valid base64"),
        (f"k1:{base64.b64encode(b'short').decode()}", "must be 32 bytes"),
    ],
)
def test_malformed_keyring_is_refused(spec, message):
    with pytest.raises(EncryptionKeyError, match=message):
        Keyring.parse(spec)


def test_each_encryption_uses_a_fresh_nonce():
    ring = Keyring.parse(f"a:{key('a')}")
    assert ring.encrypt(b"same", b"ad") != ring.encrypt(b"same", b"ad")
    assert crypto.split_token(ring.encrypt(b"same", b"ad"))[1] == "a"
