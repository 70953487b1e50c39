"""EncryptedJSONField: JSON sealed with AES-256-GCM, bound to its row by associated data."""

from __future__ import annotations

from typing import Any

from django.db import models

from common import crypto

_UNSET = object()


class _EncryptedValueDescriptor:
    """Keeps the ciphertext loaded from the database and decrypts only when read."""

    def __init__(self, field: EncryptedJSONField) -> None:
        self.field = field

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        state = instance.__dict__
        plain = state.get(self.field._plain_key, _UNSET)
        if plain is not _UNSET:
            return plain
        token = state.get(self.field._token_key)
        if token is None:
            return None
        plain = crypto.decrypt_json(token, self.field.associated_data(instance))
        state[self.field._plain_key] = plain
        return plain

    def __set__(self, instance: Any, value: Any) -> None:
        state = instance.__dict__
        if isinstance(value, str) and value.startswith(crypto.CIPHERTEXT_VERSION + ":"):
            state[self.field._token_key] = value
            state.pop(self.field._plain_key, None)
        else:
            state[self.field._plain_key] = value
            state[self.field._token_key] = None


class EncryptedJSONField(models.TextField):
    """Stores a JSON value encrypted; the model's table+pk is the associated data."""

    def contribute_to_class(self, cls: type[models.Model], name: str, private_only: bool = False) -> None:
        super().contribute_to_class(cls, name, private_only)
        # The ciphertext lives under attname so Django does not treat the field as deferred.
        self._token_key = self.attname
        self._plain_key = f"_{name}_plaintext"
        setattr(cls, self.attname, _EncryptedValueDescriptor(self))

    def associated_data(self, instance: models.Model) -> str:
        return f"{instance._meta.label_lower}:{instance.pk}:{self.name}"

    def pre_save(self, model_instance: models.Model, add: bool) -> str | None:
        state = model_instance.__dict__
        token = state.get(self._token_key)
        plain = state.get(self._plain_key, _UNSET)
        if token is None and plain is not _UNSET and plain is not None:
            token = crypto.encrypt_json(plain, self.associated_data(model_instance))
            state[self._token_key] = token
        return token

    def ciphertext(self, instance: models.Model) -> str | None:
        """Return the stored ciphertext without decrypting it."""
        return self.pre_save(instance, add=False)

    def reencrypt(self, instance: models.Model) -> bool:
        """Re-seal under the primary key; return True if the value changed key."""
        token = self.ciphertext(instance)
        if token is None:
            return False
        _, key_id, _ = crypto.split_token(token)
        if key_id == crypto.get_keyring().primary_key_id:
            return False
        value = getattr(instance, self.attname)
        instance.__dict__[self._token_key] = crypto.encrypt_json(value, self.associated_data(instance))
        return True

    def value_from_object(self, obj: models.Model) -> str | None:
        return self.ciphertext(obj)

    def formfield(self, **kwargs: Any) -> None:
        return None
