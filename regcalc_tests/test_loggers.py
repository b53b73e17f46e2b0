"""The jobs' console logger (regcalc_assets/loggers.py): Dagster's console output with every secret
of the environment masked, even for an error that was not redacted where it was raised."""

from __future__ import annotations

import dagster as dg

from regcalc_assets.loggers import redacting_console_logger


def test_a_step_failure_on_the_console_masks_the_secret(monkeypatch, capsys):
    monkeypatch.setenv("REGCALC_RULES_DSN", "postgresql://rules:ConsolePw808@rules.internal/rules")

    @dg.op
    def connect():
        raise RuntimeError("could not use postgresql://rules:ConsolePw808@rules.internal/rules")

    @dg.job(logger_defs={"console": redacting_console_logger})
    def probe():
        connect()

    result = probe.execute_in_process(raise_on_error=False,
                                      run_config={"loggers": {"console": {"config": {"log_level": "DEBUG"}}}})
    assert not result.success
    err = capsys.readouterr().err
    assert "STEP_FAILURE" in err and "rules.internal" in err  # the failure is printed, with its message
    assert "ConsolePw808" not in err and "postgresql://rules:***@rules.internal" in err


def test_every_job_of_the_definitions_uses_it():
    from regcalc_assets.definitions import build_definitions

    defs = build_definitions()
    for name in ("eod_job", "unassigned_positions_job"):
        assert defs.resolve_job_def(name).loggers["console"] is redacting_console_logger
