"""Playbook routes: the API under /api/ and the pages under /playbooks/."""

from django.urls import include, path
from rest_framework.routers import SimpleRouter

from playbooks import apis, views

app_name = "playbooks"

router = SimpleRouter()
router.register("playbook-templates", apis.PlaybookTemplateViewSet, basename="playbook-template")
router.register("playbooks", apis.PlaybookViewSet, basename="playbook")
router.register("playbook-runs", apis.PlaybookRunViewSet, basename="playbook-run")

urlpatterns = [
    path("api/", include(router.urls)),
    path("playbooks/", views.playbook_list_page, name="list"),
    path("playbooks/new/", views.playbook_create_page, name="create"),
    path("playbooks/<uuid:playbook_id>/", views.playbook_detail_page, name="detail"),
    path("playbooks/<uuid:playbook_id>/activate/", views.playbook_activate_page, name="activate"),
    path("playbooks/<uuid:playbook_id>/war-room/", views.war_room_page, name="war-room"),
    path("playbook-runs/<uuid:run_id>/retry-failed/", views.run_retry_page, name="run-retry"),
    path("playbook-runs/<uuid:run_id>/cancel/", views.run_cancel_page, name="run-cancel"),
]
