"""Every model in the admin has a correctly spelled plural ("Retention policies", not "Retention policys")."""

from __future__ import annotations

import re

from django.contrib import admin


def test_admin_plural_names_are_english():
    wrong = []
    for model in admin.site._registry:
        plural = str(model._meta.verbose_name_plural)
        if re.search(r"[^aeiou]ys$|persons$|sss$|seens$", plural):
            wrong.append(f"{model._meta.label}: {plural}")
    assert wrong == []
    names = {model._meta.label: str(model._meta.verbose_name_plural) for model in admin.site._registry}
    assert names["data_rights.RetentionPolicy"] == "retention policies" and names["sync.WebhookDelivery"] == "webhook deliveries"
    assert names["people.Person"] == "people"
