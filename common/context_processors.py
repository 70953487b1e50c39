"""Template context shared by every page."""

from django.http import HttpRequest

NAVIGATION = [
    ("Dashboard", "/"),
    ("Integrations", "/integrations/"),
    ("Status", "/integrations/status/"),
    ("People", "/people/"),
    ("Scenarios", "/scenarios/"),
    ("Playbooks", "/playbooks/"),
]


def navigation(request: HttpRequest) -> dict:
    return {"nav_items": NAVIGATION, "current_path": request.path}
