from django.urls import include, path
from rest_framework.routers import SimpleRouter

from accounts import apis

router = SimpleRouter()
router.register("organizations", apis.OrganizationViewSet, basename="organization")
router.register("members", apis.MembershipViewSet, basename="membership")
router.register("audit-events", apis.AuditEventViewSet, basename="audit-event")

urlpatterns = [path("api/", include(router.urls))]
