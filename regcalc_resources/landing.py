"""The landing zone as a resource: where deliveries are read from."""

from __future__ import annotations

import dagster as dg


class LandingZone(dg.ConfigurableResource):
    """Root folder holding ``business_date=YYYY-MM-DD/`` deliveries (landing-zone.md)."""

    root: str
