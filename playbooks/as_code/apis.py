"""Templates as code over the API: the published JSON Schema, YAML export/import, versions with diffs, restore, dry run."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.parsers import BaseParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Role
from accounts.tenancy import HasOrganizationRole, resolve_organization
from common.errors import ApplicationError
from common.parsers import JSONParser
from playbooks.as_code import services
from playbooks.as_code.models import PlaybookTemplateVersion
from playbooks.as_code.schema import TEMPLATE_SCHEMA
from playbooks.models import PlaybookTemplate


class YAMLTextParser(BaseParser):
    """The raw YAML file (validated by the service, never by a generic parser)."""

    media_type = "application/yaml"

    def parse(self, stream, media_type=None, parser_context=None):
        return {"yaml": stream.read(services.MAX_YAML_BYTES + 1)}


class TextYAMLParser(YAMLTextParser):
    media_type = "text/yaml"


class IsStaff(permissions.BasePermission):
    """Templates are shared by every organization: only Bastion's operators (staff) change them."""

    message = "Only operators (staff) change playbook templates."

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated and request.user.is_staff)


def _template(template_id) -> PlaybookTemplate:
    template = PlaybookTemplate.objects.filter(pk=template_id).first()
    if template is None:
        raise ApplicationError("No such playbook template.", code="not_found", status_code=404)
    return template


class TemplateImportInputSerializer(serializers.Serializer):
    yaml = serializers.CharField(help_text="The template file (YAML), as exported.")
    note = serializers.CharField(required=False, allow_blank=True, max_length=300)


class TemplateVersionSerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username", default="", read_only=True)

    class Meta:
        model = PlaybookTemplateVersion
        fields = ["number", "note", "digest", "created_by", "created_at"]


class TemplateImportOutputSerializer(serializers.Serializer):
    template_id = serializers.UUIDField()
    version = TemplateVersionSerializer()
    changed = serializers.BooleanField(help_text="False when the file equals the current version (no new version).")


class TemplateDiffSerializer(serializers.Serializer):
    number = serializers.IntegerField()
    diff = serializers.CharField(help_text="Unified diff of the YAML against the previous version.")


class DryRunInputSerializer(serializers.Serializer):
    values = serializers.DictField(required=False, help_text="Scenario values to render with (defaults from the scenario definition).")
    integration_bindings = serializers.DictField(child=serializers.UUIDField(), required=False)


class DryRunStepSerializer(serializers.Serializer):
    key = serializers.CharField()
    name = serializers.CharField()
    connector = serializers.CharField()
    action = serializers.CharField()
    will_run = serializers.BooleanField()
    count = serializers.IntegerField()
    description = serializers.CharField()
    blocked_reason = serializers.CharField(allow_blank=True)
    integration = serializers.DictField(allow_null=True)
    sample_payload = serializers.DictField()
    errors = serializers.ListField(child=serializers.CharField())


class TemplateSchemaView(APIView):
    permission_classes = [permissions.AllowAny]

    @extend_schema(responses={200: OpenApiTypes.OBJECT}, summary="The JSON Schema of a playbook template file")
    def get(self, request: Request) -> Response:
        """The published JSON Schema every template file is validated against (editors can use it for completion)."""
        return Response(TEMPLATE_SCHEMA)


class TemplateImportView(APIView):
    permission_classes = [IsStaff]
    parser_classes = [JSONParser, YAMLTextParser, TextYAMLParser]

    @extend_schema(
        request=TemplateImportInputSerializer,
        responses={200: TemplateImportOutputSerializer, 201: TemplateImportOutputSerializer},
        summary="Import a template file (YAML)",
    )
    def post(self, request: Request) -> Response:
        """Validate a YAML template file and store it as a new version; an unchanged file makes no version. Every problem is listed."""
        data = TemplateImportInputSerializer(data={"yaml": _text(request.data.get("yaml")), "note": request.data.get("note", "")})
        data.is_valid(raise_exception=True)
        template, version, changed = services.template_import(
            text=data.validated_data["yaml"], actor=request.user, note=data.validated_data.get("note", ""), request=request
        )
        body = TemplateImportOutputSerializer({"template_id": template.pk, "version": version, "changed": changed}).data
        return Response(body, status=status.HTTP_201_CREATED if changed else status.HTTP_200_OK)


def _text(value) -> str:
    if isinstance(value, bytes):
        if len(value) > services.MAX_YAML_BYTES:
            raise ApplicationError("The file is too large.", code="too_large", status_code=413)
        return value.decode("utf-8", errors="replace")
    return value if isinstance(value, str) else ""


class TemplateExportView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={(200, "application/yaml"): OpenApiResponse(OpenApiTypes.STR)}, summary="Export a template as YAML")
    def get(self, request: Request, template_id) -> HttpResponse:
        """The template's current version as a YAML file, ready to edit and import again."""
        template = _template(template_id)
        response = HttpResponse(services.template_export(template=template), content_type="application/yaml; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{template.scenario_type}-{template.pk}.yaml"'
        return response


class TemplateVersionsView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses=TemplateVersionSerializer(many=True), summary="The template's versions, newest first")
    def get(self, request: Request, template_id) -> Response:
        """Every stored version of the template with who made it and when, newest first."""
        template = _template(template_id)
        services.template_version_ensure(template=template, note="Recorded when listing versions")
        return Response(TemplateVersionSerializer(template.versions.order_by("-number"), many=True).data)


def _version(template_id, number) -> PlaybookTemplateVersion:
    version = PlaybookTemplateVersion.objects.select_related("template").filter(template_id=template_id, number=number).first()
    if version is None:
        raise ApplicationError("No such version.", code="not_found", status_code=404)
    return version


class TemplateVersionDiffView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses=TemplateDiffSerializer, summary="What changed in this version")
    def get(self, request: Request, template_id, number: int) -> Response:
        """A unified diff of this version against the one before it."""
        version = _version(template_id, number)
        return Response({"number": version.number, "diff": services.template_version_diff(version=version)})


class TemplateVersionRestoreView(APIView):
    permission_classes = [IsStaff]

    @extend_schema(request=None, responses=TemplateVersionSerializer, summary="Make this version current again (a new version)")
    def post(self, request: Request, template_id, number: int) -> Response:
        """Restore an earlier version by storing it as the newest one; history is never rewritten."""
        restored = services.template_version_restore(version=_version(template_id, number), actor=request.user, request=request)
        return Response(TemplateVersionSerializer(restored).data)


class TemplateDryRunView(APIView):
    permission_classes = [HasOrganizationRole]
    write_role = Role.EDITOR

    @extend_schema(
        request=DryRunInputSerializer, responses=DryRunStepSerializer(many=True), summary="Render every step against your integrations; nothing is created"
    )
    def post(self, request: Request, template_id) -> Response:
        """Render every step of the template against the organization's integrations and say what would happen; nothing is created."""
        data = DryRunInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        steps = services.template_dry_run(
            template=_template(template_id),
            organization=resolve_organization(request),
            values=data.validated_data.get("values"),
            integration_bindings={k: str(v) for k, v in (data.validated_data.get("integration_bindings") or {}).items()},
        )
        return Response(DryRunStepSerializer(steps, many=True).data)
