"""Documents of a connected tool for the forms: the file picker's listing and a workbook's named values (Capability.DOCUMENTS / DOCUMENT_VALUES)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import Membership, Role
from accounts.tenancy import OrganizationScopedMixin
from common.errors import ApplicationError
from integrations import selectors
from integrations.connectors.base import Capability, DocumentItem
from integrations.errors import ApiBadRequest, ApiError, ApiNotFound
from integrations.models import Integration
from integrations.services.catalog import connector_class_for
from integrations.services.connection import build_connector
from integrations.services.health import vendor_error
from integrations.services.usage import integration_use_check

MAX_QUERY = 200
MAX_NAMES = 50


def _connector_for(integration: Integration, capability: Capability, what: str):
    if not connector_class_for(integration.connector_key).supports(capability):
        raise ApplicationError(f"{integration.display_name} has no {what}.", code="unsupported", status_code=400, fields={"integration": [f"No {what}."]})
    return build_connector(integration)


def _vendor_problem(integration: Integration, error: ApiError, field: str) -> ApplicationError:
    """A reference the vendor does not know is the caller's mistake (4xx); anything else counts against the integration."""
    if isinstance(error, ApiBadRequest):
        return ApplicationError(error.message, code="invalid", fields={field: [error.message]})
    if isinstance(error, ApiNotFound):
        return ApplicationError(
            f"{integration.display_name} has no such {field}: {error.message}", code="not_found", status_code=404, fields={field: ["Not found."]}
        )
    return vendor_error(integration, error)


def integration_documents_browse(*, integration: Integration, membership: Membership | None, folder: str = "", query: str = "") -> list[DocumentItem]:
    """The folders and files of `folder` ("" = the top) or matching `query`, read live; the member must be allowed to use the integration."""
    if membership is not None:
        integration_use_check(integration=integration, membership=membership)
    connector = _connector_for(integration, Capability.DOCUMENTS, "documents to browse")
    try:
        return connector.browse_documents(str(folder or "")[:1000], query=str(query or "").strip()[:MAX_QUERY])
    except ApiError as error:
        raise _vendor_problem(integration, error, "folder") from error


def integration_document_values(*, integration: Integration, membership: Membership | None, document: str, names: list[str]) -> dict[str, Any]:
    """Named tables and ranges of one workbook, keyed by the names found (the caller reports the missing ones)."""
    if membership is not None:
        integration_use_check(integration=integration, membership=membership)
    connector = _connector_for(integration, Capability.DOCUMENT_VALUES, "workbooks to read values from")
    try:
        return connector.read_document_values(str(document), list(names)[:MAX_NAMES])
    except ApiError as error:
        raise _vendor_problem(integration, error, "document") from error


class DocumentItemSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="Opaque reference: pass it back as `folder` to open a folder, or store it as the document.")
    name = serializers.CharField()
    is_folder = serializers.BooleanField()
    path = serializers.CharField(help_text="Breadcrumb of the parent, e.g. 'Legal / Templates'.")
    url = serializers.CharField()
    modified_at = serializers.CharField()
    mime_type = serializers.CharField()


DOCUMENT_LISTING = inline_serializer("DocumentListing", {"integration_id": serializers.UUIDField(), "items": DocumentItemSerializer(many=True)})


class IntegrationDocumentsApi(OrganizationScopedMixin, generics.GenericAPIView):
    """The forms' file picker: sites, libraries, folders and files of a connected documents tool (editors)."""

    queryset = Integration.objects.none()
    serializer_class = DocumentItemSerializer
    read_role = Role.EDITOR

    def get_scoped_queryset(self):
        return selectors.integration_list(organization=self.organization)

    @extend_schema(
        parameters=[
            OpenApiParameter("folder", str, description="A folder's id from an earlier answer; empty for the top (sites and drives)."),
            OpenApiParameter("q", str, description="Search files by name under the folder (or everywhere at the top)."),
        ],
        responses=DOCUMENT_LISTING,
    )
    def get(self, request: Request, pk) -> Response:
        integration = self.get_object()  # another organization's integration is a 404 before anything else
        items = integration_documents_browse(
            integration=integration, membership=self.membership, folder=request.query_params.get("folder", ""), query=request.query_params.get("q", "")
        )
        return Response({"integration_id": str(integration.pk), "items": [asdict(item) for item in items]})
