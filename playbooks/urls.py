"""Playbook routes: the API under /api/ and the pages under /playbooks/."""

from django.urls import include, path
from rest_framework.routers import SimpleRouter

from playbooks import apis, views
from playbooks.human import apis as human_apis
from playbooks.human import urls as human_urls
from playbooks.triggers import apis as trigger_apis
from playbooks.triggers import urls as trigger_urls

app_name = "playbooks"

router = SimpleRouter()
router.register("playbook-templates", apis.PlaybookTemplateViewSet, basename="playbook-template")
router.register("playbooks", apis.PlaybookViewSet, basename="playbook")
router.register("playbook-runs", apis.PlaybookRunViewSet, basename="playbook-run")
router.register("human-steps", human_apis.HumanStepViewSet, basename="human-step")
router.register("trigger-rules", trigger_apis.TriggerRuleViewSet, basename="trigger-rule")
router.register("inbound-endpoints", trigger_apis.InboundEndpointViewSet, basename="inbound-endpoint")

urlpatterns = [
    path("api/", include(router.urls)),
    path("playbooks/", views.playbook_list_page, name="list"),
    path("playbooks/new/", views.playbook_create_page, name="create"),
    path("playbooks/<uuid:playbook_id>/", views.playbook_detail_page, name="detail"),
    path("playbooks/<uuid:playbook_id>/activate/", views.playbook_activate_page, name="activate"),
    path("playbooks/<uuid:playbook_id>/war-room/", views.war_room_page, name="war-room"),
    path("playbooks/<uuid:playbook_id>/war-room/live/", views.war_room_live, name="war-room-live"),
    path("playbook-runs/<uuid:run_id>/retry-failed/", views.run_retry_page, name="run-retry"),
    path("playbook-runs/<uuid:run_id>/resume/", views.run_resume_page, name="run-resume"),
    path("playbook-runs/<uuid:run_id>/cancel/", views.run_cancel_page, name="run-cancel"),
]
urlpatterns += human_urls.urlpatterns + trigger_urls.urlpatterns
