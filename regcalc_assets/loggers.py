"""The console logger of every regcalc job: Dagster's default console output, secrets masked.

Dagster's default ``console`` logger writes each event (a step failure with its error and
trace included) to standard error, which the compute logs and the command line capture. This one
has the same configuration (``log_level``, ``name``) and format, through
``regcalc_core.redaction.RedactingFormatter``; ``build_definitions`` makes it the jobs' ``console``
logger, which the command line's runs configure (``regcalc_cli.eod.quiet_run_config``).
"""

from __future__ import annotations

import logging
import sys

import dagster as dg

FORMAT = "%(asctime)s - %(name)s - %(levelname)s - %(message)s"  # Dagster's console format
DATE_FORMAT = "%Y-%m-%d %H:%M:%S %z"


def redacting_stream_logger(name: str, level: str | int, stream=None) -> logging.Logger:
    """A logger of its own (not registered with ``logging``) writing to ``stream`` (standard error
    by default) at ``level``, each line with its secrets masked."""
    from regcalc_core.redaction import RedactingFormatter

    log = logging.Logger(name, level=level if isinstance(level, int) else level.upper())
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(RedactingFormatter(logging.Formatter(FORMAT, DATE_FORMAT)))
    log.addHandler(handler)
    return log


@dg.logger(
    {
        "log_level": dg.Field(str, is_required=False, default_value="INFO", description="The logger's threshold."),
        "name": dg.Field(str, is_required=False, default_value="dagster", description="The logger's name."),
    },
    description="Dagster's console logger with every secret of the environment masked.",
)
def redacting_console_logger(init_context) -> logging.Logger:
    """Dagster's console logger, secrets masked (see the module)."""
    config = init_context.logger_config
    return redacting_stream_logger(config["name"], config["log_level"])
