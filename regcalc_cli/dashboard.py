"""`regcalc dashboard`: placeholder registered so the command group stays importable while it is written."""

from __future__ import annotations

import click


@click.command(name="dashboard")
def dashboard():
    """Not yet available."""
    raise click.ClickException("regcalc dashboard is not yet available")
