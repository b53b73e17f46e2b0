# regcalc: the two commands of the README, and a few conveniences.
PY       ?= python3
VENV     ?= .venv
BIN      := $(VENV)/bin
export REGCALC_HOME ?= $(CURDIR)/.regcalc

.PHONY: install chromium demo test ui bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip uv

# dagster-dbt pulls sqlglot[rs], whose compiled overlay (sqlglotc) breaks sqlframe: remove it.
# Bytecode is compiled at install: with PYTHONDONTWRITEBYTECODE set (as on CI machines) every
# process would otherwise compile Dagster, sqlglot, pandas ... from source (about 6 s each).
install: $(BIN)/python
	$(BIN)/uv pip install --quiet --python $(BIN)/python -e ".[test]"
	$(BIN)/uv pip uninstall --quiet --python $(BIN)/python sqlglotc sqlglotrs || true
	$(BIN)/python -m compileall -q -j 0 $$($(BIN)/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])") \
		regcalc_core regcalc_resources regcalc_assets regcalc_cli > /dev/null || true

# headless Chromium for the browser tests, from the machine's package manager (Playwright drives
# /usr/bin/chromium; it never downloads a browser)
chromium:
	@command -v chromium > /dev/null || (apt-get install -y -qq chromium > /dev/null 2>&1 || \
		(apt-get update -qq > /dev/null && apt-get install -y -qq chromium > /dev/null))

demo: install            ## generate a landing zone, run EOD for every date, print LCR / NSFR
	$(BIN)/regcalc demo

# two workers, one test file each at a time (module fixtures stay shared): most of a test's time
# is single-threaded Python (query planning, Dagster), so two cores run two files at once
test: install chromium          ## the whole suite, both engines (CI runs exactly this)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

# the recalc sensor observes REGCALC_LANDING: the demo's landing zone (`make demo`) unless it is set
ui: install              ## the Dagster UI over the state the CLI wrote
	$(BIN)/python -c "from regcalc_cli.instance import get_instance; get_instance()"  # created once, under its lock
	REGCALC_LANDING="$${REGCALC_LANDING:-$(REGCALC_HOME)/demo-landing}" DAGSTER_HOME=$(REGCALC_HOME)/dagster \
		$(BIN)/dagster dev -w workspace.yaml

bench: install           ## EOD benchmark (writes JSON figures)
	$(BIN)/python benchmarks/eod_benchmark.py

clean:
	rm -rf $(REGCALC_HOME) .pytest_cache
