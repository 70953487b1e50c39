"""Scenario API: fill fields from a workbook in a connected tool (POST /api/scenarios/<id>/document-import)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import Role
from scenarios.apis import ScenarioScopedView
from scenarios.document_imports import scenario_document_import


class DocumentImportInputSerializer(serializers.Serializer):
    integration = serializers.CharField(help_text="The id of the connected documents tool (an integration of your organization).")
    document = serializers.JSONField(
        help_text="The workbook: its id from the file picker, or the document field's value {integration_id, id, name, path, url}."
    )
    mapping = serializers.JSONField(help_text="Field key → 'Table.Column', a named range ('DealValue') or a cell or range ('Model!B2').")


DOCUMENT_IMPORT_OUTPUT = inline_serializer(
    "DocumentImportResult",
    {
        "document": serializers.DictField(),
        "values": serializers.DictField(help_text="The imported values, as saved."),
        "value_sources": serializers.DictField(help_text="Per field: origin and items naming the workbook and the table, range or cell."),
    },
)


class ScenarioDocumentImportApi(ScenarioScopedView):
    write_role = Role.EDITOR

    @extend_schema(
        request=DocumentImportInputSerializer,
        responses=DOCUMENT_IMPORT_OUTPUT,
        examples=[
            OpenApiExample(
                "An M&A model",
                value={
                    "integration": "7b0c2f4e-3d1a-4c55-9a51-2f0f6c1e9b10",
                    "document": {"id": "item:b!deals:01FALCON", "name": "Project Falcon model.xlsx"},
                    "mapping": {"deal_value": "DealValue", "close_date": "CloseDate", "synergy_targets": "Synergies"},
                },
                request_only=True,
            )
        ],
    )
    def post(self, request: Request, pk) -> Response:
        data = DocumentImportInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        result = scenario_document_import(
            scenario=self.get_scenario(),
            integration_id=data.validated_data["integration"],
            document=data.validated_data["document"],
            mapping=data.validated_data["mapping"],
            actor=request.user,
            membership=self.membership,
            request=request,
        )
        return Response(result)
