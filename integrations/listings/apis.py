"""The listings API: systems Bastion imports from instead of connecting to (the import through their templates: scenarios.apis_listings)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.tenancy import OrganizationScopedMixin
from common.errors import ApplicationError
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
