"""Microsoft 365 stand-in: Entra sign-in for the Bastion app and Microsoft Graph v1.0 (Teams, Outlook calendar, files, Excel, subscriptions).

Served under /microsoft365: the Entra login at /<tenant>/oauth2/v2.0/{authorize,token} (and Bastion's generic /oauth/...), Graph at
/v1.0/... (users are the Entra stand-in's directory: same ids and emails), the copy monitor at /_api/v2.0/monitor/<id>, and the
sandbox's own controls at /_control/: knobs (PUT), events/<id>/respond, subscriptions/<id>/lifecycle and /expire, deliveries,
channels/<id>/messages (a person posts). Graph's shared fault knobs: PUT /_control/faults/microsoft365.
"""

from __future__ import annotations

from flask import Blueprint

from sandbox.server import install_faults
from sandbox.vendors.microsoft365 import batch, calendar, control, files, files_extra, login, meetings, subscriptions, teams, workbook
from sandbox.vendors.microsoft365 import seed as seeding
from sandbox.vendors.microsoft365.common import VENDOR, authenticate, fault_error, rate_limited, refuse_off_spec

__all__ = ["VENDOR", "blueprints", "seed"]


def seed() -> None:
    seeding.seed()
    login.restore_tokens()


def blueprints() -> list[Blueprint]:
    graph = Blueprint("microsoft365_graph", __name__)
    install_faults(graph, VENDOR, rate_limited=rate_limited, error=fault_error)
    graph.before_request(authenticate)
    graph.before_request(refuse_off_spec)
    for module in (teams, meetings, calendar, files, files_extra, workbook, subscriptions):
        module.register(graph)
    return [login.blueprint(), graph, batch.blueprint(), control.blueprint(), files.monitor_blueprint()]
