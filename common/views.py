"""The dashboard shell and health check."""

from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from accounts.models import Role
from accounts.tenancy import organization_page


@organization_page(Role.VIEWER)
def dashboard(request: HttpRequest) -> HttpResponse:
    return render(request, "dashboard.html", {"organization": request.organization})


def healthz(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})
