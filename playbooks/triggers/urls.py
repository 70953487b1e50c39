"""Routes for trigger rules and the generic inbound webhook (added to playbooks/urls.py)."""

from django.urls import path

from playbooks.triggers import apis

urlpatterns = [
    path("api/inbound/<str:endpoint_id>", apis.inbound_intake, name="inbound-intake"),
]
