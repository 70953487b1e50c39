from django.urls import include, path
from rest_framework.routers import SimpleRouter

from accounts import apis, views

router = SimpleRouter()
router.register("organizations", apis.OrganizationViewSet, basename="organization")
router.register("members", apis.MembershipViewSet, basename="membership")
router.register("invitations", apis.InvitationViewSet, basename="invitation-api")
router.register("audit-events", apis.AuditEventViewSet, basename="audit-event")

urlpatterns = [
    path("api/invitations/accept", apis.InvitationAcceptApi.as_view(), name="invitation-accept"),
    path("api/", include(router.urls)),
    path("invitations/<str:token>/", views.invitation_page, name="invitation"),
]
