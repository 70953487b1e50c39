"""Form engine routes: schema/options/validate/import/refresh APIs and the scenario pages."""

from django.urls import path

from forms_engine import apis, views

urlpatterns = [
    path("api/scenarios/<uuid:pk>/validate", apis.ScenarioValidateApi.as_view(), name="scenario-validate"),
    path("api/scenarios/<slug:scenario_type>/form-schema", apis.FormSchemaApi.as_view(), name="scenario-form-schema"),
    path("api/scenarios/<slug:scenario_type>/validate", apis.TypeValidateApi.as_view(), name="scenario-type-validate"),
    path("api/scenarios/<slug:scenario_type>/fields/<slug:field_key>/options", apis.FieldOptionsApi.as_view(), name="scenario-field-options"),
    path("api/scenarios/<slug:scenario_type>/fields/<slug:field_key>/import", apis.FieldImportApi.as_view(), name="scenario-field-import"),
    path("api/scenarios/<slug:scenario_type>/fields/<slug:field_key>/refresh", apis.FieldRefreshApi.as_view(), name="scenario-field-refresh"),
    path("scenarios/", views.scenario_list_page, name="scenario-list-page"),
    path("scenarios/new/", views.scenario_choose_type_page, name="scenario-choose-type"),
    path("scenarios/new/<slug:scenario_type>/", views.scenario_new_page, name="scenario-new"),
    path("scenarios/<uuid:pk>/edit/", views.scenario_edit_page, name="scenario-edit"),
    path("scenarios/<uuid:pk>/upgrade/", views.scenario_upgrade_page, name="scenario-upgrade-page"),
]
