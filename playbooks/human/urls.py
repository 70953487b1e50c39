"""Routes for human steps (added to playbooks/urls.py under the playbooks namespace)."""

from django.urls import path

from playbooks.human import views

urlpatterns = [
    path("approvals/<str:token>/", views.approval_link_page, name="approval-link"),
    path("human-steps/<uuid:human_step_id>/decide/", views.human_step_decide_page, name="human-step-decide"),
    # <vendor> is the connector key of the integration (checked): the chat app's interactivity URL, e.g. /api/<key>/interactions/<id>.
    path("api/<str:vendor>/interactions/<str:integration_id>", views.chat_interactions, name="chat-interactions"),
]
