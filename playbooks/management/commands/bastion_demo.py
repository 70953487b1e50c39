"""Create (or refresh) the demo organization and its admin user, and print how to sign in."""

import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from accounts.models import Organization, Role
from accounts.services import membership_set, organization_create


class Command(BaseCommand):
    help = "Create the demo organization and admin user for the one-command demo."

    def handle(self, *args, **options):
        User = get_user_model()
        password = os.environ.get("BASTION_DEMO_PASSWORD") or secrets.token_urlsafe(9)
        admin, _ = User.objects.get_or_create(username="admin", defaults={"email": "admin@demo.bastion.local", "is_staff": True, "is_superuser": True})
        admin.is_staff = admin.is_superuser = True
        admin.set_password(password)
        admin.save()
        organization = Organization.objects.filter(slug="demo").first() or organization_create(name="Demo Corp", slug="demo", owner=admin)
        membership_set(organization=organization, user=admin, role=Role.OWNER)
        self.stdout.write(self.style.SUCCESS("Bastion demo is ready."))
        self.stdout.write(f"  Sign in at {os.environ.get('BASTION_PUBLIC_URL', 'http://127.0.0.1:8000')}/accounts/login/")
        self.stdout.write(f"  username: admin   password: {password}")
