"""Record every sign-in and failed sign-in in the audit trail."""

from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver

from accounts.services import audit_record


@receiver(user_logged_in)
def record_sign_in(sender, request, user, **kwargs):
    audit_record(action="auth.sign_in", actor=user, target=user, request=request)


@receiver(user_login_failed)
def record_failed_sign_in(sender, credentials, request=None, **kwargs):
    audit_record(action="auth.sign_in_failed", changes={"username": credentials.get("username") or credentials.get("email") or ""}, request=request)
