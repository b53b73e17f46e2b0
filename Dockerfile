# syntax=docker/dockerfile:1
# The regcalc image: the code server, every run pod, the webserver and the daemon of the Helm
# deployment (helm/values.yaml). Build from the repository root (README, "Deploy"):
#   docker build -t registry.example.internal/regcalc:0.1.0 .
# The project is installed from the committed lockfile (uv.lock; `uv lock` after a change to
# pyproject.toml), exactly, and the build fails if the lockfile does not match pyproject.toml.
FROM python:3.11-slim-bookworm

# A JRE 17 for PySpark (Debian's package); procps for Spark's scripts; tini as PID 1, so that
# SIGTERM from Kubernetes reaches the code server and the runs.
RUN apt-get update \
    && apt-get install -y --no-install-recommends openjdk-17-jre-headless procps tini \
    && rm -rf /var/lib/apt/lists/*

# uv at the version that wrote uv.lock
RUN pip install --no-cache-dir uv==0.13.9

ENV PYTHONUNBUFFERED=1 \
    UV_PROJECT_ENVIRONMENT=/opt/regcalc/venv \
    UV_PYTHON_DOWNLOADS=never \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1 \
    PATH=/opt/regcalc/venv/bin:$PATH \
    REGCALC_HOME=/var/lib/regcalc \
    DAGSTER_HOME=/opt/dagster/dagster_home

# An unprivileged user owns the environment: dbt writes its target directory inside the installed
# project (regcalc_assets/reporting/dbt). The chart mounts dagster.yaml into DAGSTER_HOME.
RUN useradd --create-home --uid 1000 regcalc \
    && mkdir -p /opt/regcalc/src /var/lib/regcalc /opt/dagster/dagster_home \
    && chown -R regcalc:regcalc /opt/regcalc /var/lib/regcalc /opt/dagster/dagster_home
USER regcalc
WORKDIR /opt/regcalc/src

# The dependencies alone first: this layer changes only with the lockfile. The `connect` extra is
# Spark Connect's client (gRPC): the runs reach the Spark cluster at REGCALC_SPARK_REMOTE.
COPY --chown=regcalc:regcalc pyproject.toml uv.lock ./
RUN uv sync --locked --no-dev --extra connect --no-install-project --python /usr/local/bin/python3.11

# Then the project itself (not editable: the packages go into site-packages).
COPY --chown=regcalc:regcalc regcalc_core ./regcalc_core
COPY --chown=regcalc:regcalc regcalc_resources ./regcalc_resources
COPY --chown=regcalc:regcalc regcalc_assets ./regcalc_assets
COPY --chown=regcalc:regcalc regcalc_cli ./regcalc_cli
RUN uv sync --locked --no-dev --extra connect --no-editable --python /usr/local/bin/python3.11

# As the Makefile's install target: dagster-dbt pulls sqlglot[rs], whose compiled overlay
# (sqlglotc) breaks sqlframe, so remove it; and compile every module to bytecode once, here,
# rather than in every process (about 6 s each).
RUN uv pip uninstall --python /opt/regcalc/venv/bin/python sqlglotc sqlglotrs || true
RUN python -m compileall -q -j 0 $(python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])") > /dev/null || true

# The dbt project's manifest, parsed once at build time instead of in every pod.
RUN python -c "from regcalc_assets.reporting.logic import manifest_path; print(manifest_path())"

WORKDIR /var/lib/regcalc
EXPOSE 3030
ENTRYPOINT ["tini", "--"]
# The code server, as the chart starts it (dagsterApiGrpcArgs); run pods get their own command
# (dagster api execute_run) and the webserver and daemon theirs, all from the chart.
CMD ["dagster", "api", "grpc", "-h", "0.0.0.0", "-p", "3030", "--module-name", "regcalc_assets.definitions"]
