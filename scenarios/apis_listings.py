"""The import through a listing's template into a scenario field (the listings themselves: integrations.listings.apis)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import generics, serializers
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.tenancy import OrganizationScopedMixin
from common.errors import ApplicationError
from integrations.listings.catalogue import listing_get
from integrations.models import Integration
from scenarios import listing_imports as imports


class ListingImportInputSerializer(serializers.Serializer):
    template = serializers.CharField(help_text="The key of one of the listing's templates.")
    scenario = serializers.UUIDField(help_text="A scenario of the template's scenario type.")
    # Not a ChoiceField: the populate-field API already names an append/replace enum "mode", and two such enums collide in the schema.
    mode = serializers.CharField(default="append", help_text="append (keep the field's values and add the new ones) or replace.")
    file = serializers.FileField(help_text="The vendor's export (CSV UTF-8, at most 1 MB).")


LISTING_IMPORT_OUTPUT = inline_serializer(
    "ListingImportResult",
    {
        "field": serializers.CharField(),
        "value": serializers.JSONField(),
        "imported": serializers.IntegerField(),
        "skipped": serializers.IntegerField(help_text="Rows left out on purpose (closed questions, the same person again)."),
        "errors": serializers.ListField(child=serializers.DictField(), help_text="Rows refused, each with its line number."),
        "value_sources": serializers.JSONField(),
        "scenario_id": serializers.UUIDField(),
        "scenario_title": serializers.CharField(),
        "template": serializers.CharField(),
    },
)


class ListingImportApi(OrganizationScopedMixin, generics.GenericAPIView):
    """Import a vendor export through one of the listing's templates into a scenario field."""

    queryset = Integration.objects.none()
    serializer_class = ListingImportInputSerializer
    parser_classes = [MultiPartParser, FormParser]

    def get_scoped_queryset(self):
        return self.queryset

    @extend_schema(request={"multipart/form-data": ListingImportInputSerializer}, responses=LISTING_IMPORT_OUTPUT)
    def post(self, request: Request, key: str) -> Response:
        listing = listing_get(key)
        if listing is None:
            raise ApplicationError("No such listing.", code="unknown_listing", status_code=404)
        data = ListingImportInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        upload = data.validated_data["file"]
        if upload.size > imports.MAX_UPLOAD_BYTES:
            raise ApplicationError("The file is larger than 1000 kB.", code="csv_too_large", fields={"file": ["Too large."]})
        result = imports.listing_import(
            organization=self.organization,
            listing=listing,
            template_key=data.validated_data["template"],
            scenario_id=str(data.validated_data["scenario"]),
            content=upload.read(),
            filename=upload.name or "upload.csv",
            mode=data.validated_data["mode"],
            actor=request.user,
            request=request,
        )
        return Response(result)
