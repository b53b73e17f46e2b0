"""`regcalc disclose`: placeholder registered so the command group stays importable while it is written."""

from __future__ import annotations

import click


@click.command(name="disclose")
def disclose():
    """Not yet available."""
    raise click.ClickException("regcalc disclose is not yet available")
