"""The invitation page a person reaches from the e-mailed link."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from accounts import invitations
from common.errors import ApplicationError


@require_http_methods(["GET", "POST"])
def invitation_page(request: HttpRequest, token: str) -> HttpResponse:
    """Show who invites whom to what; a signed-in invitee accepts, anyone else signs in or creates an account first."""
    invitation = invitations.invitation_for_token(token)
    if invitation is None:
        return render(request, "account/invitation.html", {"invitation": None}, status=404)
    # Remembered for sign-up: with sign-up closed, only the holder of a valid invitation may create an account.
    request.session[invitations.SESSION_KEY] = token
    here = reverse("invitation", args=[token])
    if request.method == "POST":
        if not request.user.is_authenticated:
            return redirect(f"{reverse('account_login')}?next={here}")
        try:
            membership = invitations.invitation_accept(token=token, user=request.user, request=request)
        except ApplicationError as error:
            return render(request, "account/invitation.html", {"invitation": invitation, "error": error.message, "here": here}, status=error.status_code)
        request.session.pop(invitations.SESSION_KEY, None)
        messages.success(request, f"You joined {membership.organization.name}.")
        return redirect("/")
    return render(request, "account/invitation.html", {"invitation": invitation, "here": here})
