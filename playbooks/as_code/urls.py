"""Routes for templates as code (added to playbooks/urls.py through playbooks/triggers/urls.py's list)."""

from django.urls import path

from playbooks.as_code import apis

urlpatterns = [
    path("api/template-files/schema.json", apis.TemplateSchemaView.as_view(), name="template-schema"),
    path("api/template-files/", apis.TemplateImportView.as_view(), name="template-import"),
    path("api/template-files/<uuid:template_id>.yaml", apis.TemplateExportView.as_view(), name="template-export"),
    path("api/template-files/<uuid:template_id>/versions/", apis.TemplateVersionsView.as_view(), name="template-versions"),
    path("api/template-files/<uuid:template_id>/versions/<int:number>/diff/", apis.TemplateVersionDiffView.as_view(), name="template-version-diff"),
    path("api/template-files/<uuid:template_id>/versions/<int:number>/restore/", apis.TemplateVersionRestoreView.as_view(), name="template-version-restore"),
    path("api/template-files/<uuid:template_id>/dry-run/", apis.TemplateDryRunView.as_view(), name="template-dry-run"),
]
