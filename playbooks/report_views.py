"""Download a run's report (Markdown or PDF) and read the cross-run insights (API)."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.tenancy import HasOrganizationRole, organization_page, resolve_organization
from common.openapi_summary import SummaryAutoSchema
from playbooks import reports, selectors


@organization_page()
def run_report_download(request: HttpRequest, run_id) -> HttpResponse:
    run = selectors.playbook_run_list(organization=request.organization).filter(pk=run_id).first()
    if run is None:
        raise Http404("No such run.")
    response = HttpResponse(reports.run_report_markdown(run=run), content_type="text/markdown; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="run-{run.pk}.md"'
    return response


@organization_page()
def run_report_pdf_download(request: HttpRequest, run_id) -> HttpResponse:
    run = selectors.playbook_run_list(organization=request.organization).filter(pk=run_id).first()
    if run is None:
        raise Http404("No such run.")
    response = HttpResponse(reports.run_report_pdf(run=run), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="run-{run.pk}.pdf"'
    return response


class FailingStepSerializer(serializers.Serializer):
    step_key = serializers.CharField()
    step_name = serializers.CharField()
    runs = serializers.IntegerField()
    failed = serializers.IntegerField()
    retried = serializers.IntegerField()


class WaitingStepSerializer(serializers.Serializer):
    step_key = serializers.CharField()
    title = serializers.CharField()
    count = serializers.IntegerField()
    average_wait_seconds = serializers.FloatField()


class RunInsightsSerializer(serializers.Serializer):
    failing = FailingStepSerializer(many=True)
    waiting = WaitingStepSerializer(many=True)


class RunInsightsView(APIView):
    """Across the organization's runs: the steps that fail or wait most."""

    schema = SummaryAutoSchema()  # listed with a one-line summary in the API docs

    permission_classes = [HasOrganizationRole]

    @extend_schema(responses=RunInsightsSerializer)
    def get(self, request: Request) -> Response:
        return Response(RunInsightsSerializer(reports.steps_that_fail_or_wait(organization=resolve_organization(request))).data)
