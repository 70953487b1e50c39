from django.urls import path

from data_rights import apis

urlpatterns = [
    path("api/data-rights/people/<uuid:person_id>/export", apis.PersonExportApi.as_view(), name="data-rights-person-export"),
    path("api/data-rights/people/<uuid:person_id>/erase", apis.PersonEraseApi.as_view(), name="data-rights-person-erase"),
    path("api/data-rights/retention", apis.RetentionPolicyApi.as_view(), name="data-rights-retention"),
    path("api/data-rights/suppressions/lift", apis.SuppressionLiftApi.as_view(), name="data-rights-suppression-lift"),
]
