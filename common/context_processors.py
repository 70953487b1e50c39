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
    """Navigation with the one current item: the longest link that prefixes the path."""
    matches = [url for _, url in NAVIGATION if request.path == url or (url != "/" and request.path.startswith(url))]
    current = max(matches, key=len) if matches else ""
    return {"nav_items": NAVIGATION, "current_path": request.path, "current_nav": current}
