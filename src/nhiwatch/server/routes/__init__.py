"""The dashboard's routes, one router per area, in the order `create_app` includes them."""

from __future__ import annotations

from nhiwatch.server.routes import findings, identity, incidents, inventory, overview, pages, respond, session

ROUTERS = (pages.router, session.router, overview.router, inventory.router, identity.router, findings.router,
           incidents.router, respond.router)
