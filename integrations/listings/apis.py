"""The listings API: systems Bastion imports from instead of connecting to, and the import through their templates."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import generics, serializers
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.tenancy import OrganizationScopedMixin
from common.errors import ApplicationError
from integrations.listings import imports
from integrations.listings.catalogue import Listing, listing_get, listings
from integrations.models import Integration
from integrations.selectors import logo_url


class SourceSerializer(serializers.Serializer):
    url = serializers.URLField()
    says = serializers.CharField()
    confirmed = serializers.BooleanField(help_text="False where Bastion could not confirm it from the vendor's own documentation.")


class ImportTemplateSerializer(serializers.Serializer):
    key = serializers.CharField()
    title = serializers.CharField()
    description = serializers.CharField()
    exported_from = serializers.CharField(help_text="Where in the vendor's product the export comes from.")
    confirmed = serializers.BooleanField(help_text="The column names come from the vendor's documentation (else Bastion's own template).")
    scenario_type = serializers.CharField()
    field = serializers.CharField(help_text="The scenario field the import fills.")
    kind = serializers.ChoiceField(choices=["people", "lines"])
    columns = serializers.DictField(child=serializers.ListField(child=serializers.CharField()), help_text="Bastion column → accepted vendor header names.")
    required = serializers.ListField(child=serializers.CharField())
    download_url = serializers.CharField()


class ListingSerializer(serializers.Serializer):
    key = serializers.CharField()
    name = serializers.CharField()
    category = serializers.CharField()
    category_label = serializers.CharField()
    summary = serializers.CharField()
    logo_url = serializers.CharField()
    availability = serializers.ChoiceField(choices=["no_public_api", "partner_only", "customer_api", "restricted"])
    availability_label = serializers.CharField()
    api_status = serializers.CharField(help_text="The vendor's API as Bastion's vendor facts describe it.")
    facts = serializers.CharField()
    can = serializers.ListField(child=serializers.CharField())
    cannot = serializers.ListField(child=serializers.CharField())
    why = serializers.CharField()
    custom_connector_starter = serializers.BooleanField(help_text="A starter spec for the custom connector builder is offered.")
    inbound_webhook = serializers.BooleanField(help_text="The vendor can post to Bastion's signed inbound webhook.")
    reach_note = serializers.CharField()
    templates = ImportTemplateSerializer(many=True)
    sources = SourceSerializer(many=True)
    page_url = serializers.CharField()


def listing_data(listing: Listing) -> dict:
    return {
        "key": listing.key,
        "name": listing.name,
        "category": listing.category,
        "category_label": listing.category_label,
        "summary": listing.summary,
        "logo_url": logo_url(listing.logo),
        "availability": listing.availability,
        "availability_label": listing.availability_label,
        "api_status": listing.api_status,
        "facts": listing.facts,
        "can": list(listing.can),
        "cannot": list(listing.cannot),
        "why": listing.why,
        "custom_connector_starter": bool(listing.starter),
        "inbound_webhook": listing.inbound_webhook,
        "reach_note": listing.reach_note,
        "templates": [
            {
                **{name: getattr(t, name) for name in ("key", "title", "description", "exported_from", "confirmed", "scenario_type", "field", "kind")},
                "columns": {name: list(names) for name, names in t.columns.items()},
                "required": list(t.required),
                "download_url": f"/integrations/listings/{listing.key}/templates/{t.key}.csv",
            }
            for t in listing.templates
        ],
        "sources": [{"url": s.url, "says": s.says, "confirmed": s.confirmed} for s in listing.sources],
        "page_url": f"/integrations/listings/{listing.key}/",
    }


class ListingsApi(OrganizationScopedMixin, generics.GenericAPIView):
    """Systems without a usable public API: what Bastion imports from each, what it cannot do and why."""

    queryset = Integration.objects.none()
    serializer_class = ListingSerializer
    pagination_class = None

    def get_scoped_queryset(self):
        return self.queryset

    @extend_schema(responses=ListingSerializer(many=True))
    def get(self, request: Request) -> Response:
        return Response([listing_data(listing) for listing in listings()])


class ListingDetailApi(OrganizationScopedMixin, generics.GenericAPIView):
    """One listing."""

    queryset = Integration.objects.none()
    serializer_class = ListingSerializer

    def get_scoped_queryset(self):
        return self.queryset

    @extend_schema(responses=ListingSerializer)
    def get(self, request: Request, key: str) -> Response:
        listing = listing_get(key)
        if listing is None:
            raise ApplicationError("No such listing.", code="unknown_listing", status_code=404)
        return Response(listing_data(listing))


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
