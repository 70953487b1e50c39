"""Re-encrypt every encrypted field under the primary key of BASTION_ENCRYPTION_KEYS."""

from django.apps import apps
from django.core import checks
from django.core.management.base import BaseCommand
from django.db import transaction

from common import crypto
from common.fields import EncryptedJSONField


class Command(BaseCommand):
    help = "Re-encrypt all credentials under the primary encryption key and report counts."

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=500)

    def handle(self, *args, **options):
        keyring = crypto.get_keyring()
        total = rotated = 0
        for model in apps.get_models():
            fields = [f for f in model._meta.concrete_fields if isinstance(f, EncryptedJSONField)]
            if not fields:
                continue
            model_rotated = 0
            queryset = model._default_manager.order_by("pk")
            for instance in queryset.iterator(chunk_size=options["batch_size"]):
                total += 1
                changed = [f.attname for f in fields if f.reencrypt(instance)]
                if changed:
                    with transaction.atomic():
                        model._default_manager.filter(pk=instance.pk).update(**{name: getattr(model, name).field.ciphertext(instance) for name in changed})
                    model_rotated += 1
            rotated += model_rotated
            self.stdout.write(f"{model._meta.label}: {model_rotated} re-encrypted")
        self.stdout.write(
            self.style.SUCCESS(f"Primary key '{keyring.primary_key_id}': {rotated} of {total} rows re-encrypted, {total - rotated} already current.")
        )
        # Apps may hold key-dependent data that cannot be re-encrypted (e.g. keyed digests): their database checks say which keys to keep.
        for message in checks.run_checks(tags=[checks.Tags.database], databases=["default"]):
            self.stdout.write(f"{message.id}: {message.msg}" + (f" {message.hint}" if message.hint else ""))
