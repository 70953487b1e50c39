"""Routes for human steps (added to playbooks/urls.py under the playbooks namespace)."""

from django.urls import path

from playbooks.human import views

urlpatterns = [
    path("approvals/<str:token>/", views.approval_link_page, name="approval-link"),
    path("human-steps/<uuid:human_step_id>/decide/", views.human_step_decide_page, name="human-step-decide"),
    path("api/slack/interactions/<str:integration_id>", views.slack_interactions, name="slack-interactions"),
]
