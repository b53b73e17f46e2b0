"""The production deployment (README, "Deploy"), checked without a cluster or a Docker engine.

- the image: the lockfile matches pyproject.toml and installs (uv, dry run), the Dockerfile
  installs from it and removes sqlglotc as the Makefile does, and its command loads the
  definitions;
- ``helm/values.yaml``: the instance config the official chart renders from it (its templates
  mirrored by ``rendered_*`` below, camelCase values to dagster.yaml) validates against each
  class's own config schema (dagster-k8s's K8sRunLauncher, dagster-postgres, dagster-aws), with
  modules the image has; and the Kubernetes job dagster-k8s builds for a run of ``eod_job`` (the
  real K8sRunLauncher, its API client replaced by a recorder) has the intended resources, the
  landing-zone volume and the secrets, and passes ``kubernetes-validate --strict``;
- the manifests the project ships (``helm/*.yaml`` other than the values) pass
  ``kubernetes-validate --strict``;
- ``dagster definitions validate`` passes with the production environment (dummy secrets), and
  a multi-pod deployment without a shared rule store refuses to start.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
HELM = REPO / "helm"
BIN = Path(sys.executable).parent
K8S_VERSION = "1.33.0"  # a Kubernetes version EKS supports; kubernetes-validate ships its schemas
RELEASE = NAMESPACE = "regcalc"  # helm upgrade --install regcalc dagster/dagster -n regcalc (README)
FULLNAME = f"{RELEASE}-dagster"  # the chart's dagster.fullname for that release
DAGSTER_HOME = "/opt/dagster/dagster_home"  # the chart's global.dagsterHome
DUMMY_SECRETS = {  # the keys of secret regcalc-secrets, with values of the right shape
    "REGCALC_RULES_DSN": "postgresql://regcalc:dummy@rules.invalid:5432/rules?sslmode=require",
    "REGCALC_REDSHIFT_DSN": "redshift://regcalc:dummy@warehouse.invalid:5439/regcalc",
    "REGCALC_REDSHIFT_IAM_ROLE": "arn:aws:iam::111122223333:role/regcalc-redshift-copy",
    "REGCALC_REDSHIFT_STAGING_BUCKET": "regcalc-redshift-staging",
}
WANTED_RUN_POD = {"requests": {"cpu": "2", "memory": "8Gi"}, "limits": {"cpu": "2", "memory": "8Gi"}}


@pytest.fixture(scope="module")
def values() -> dict:
    return yaml.safe_load((HELM / "values.yaml").read_text())


def code_server(values: dict) -> dict:
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    return deployment


def production_env(values: dict, tmp_path: Path, **overrides) -> dict[str, str]:
    """The code server's environment as the chart sets it from ``values`` (secrets: the dummy
    values; optional ones absent), on top of this machine's environment without any regcalc or
    OpenLineage variable of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REGCALC_", "OPENLINEAGE_", "DAGSTER_"))}
    for item in code_server(values)["env"]:
        if "value" in item:
            env[item["name"]] = str(item["value"])
        elif not item["valueFrom"]["secretKeyRef"].get("optional"):
            env[item["name"]] = DUMMY_SECRETS[item["valueFrom"]["secretKeyRef"]["key"]]
    env.update({  # what the image (Dockerfile ENV) and the chart's shared env add, here in tmp_path
        "REGCALC_HOME": str(tmp_path / "regcalc-home"), "DAGSTER_HOME": str(tmp_path / "dagster-home"),
        "DAGSTER_K8S_PIPELINE_RUN_NAMESPACE": NAMESPACE,
        "DAGSTER_K8S_PIPELINE_RUN_ENV_CONFIGMAP": f"{FULLNAME}-pipeline-env",
    })
    (tmp_path / "dagster-home").mkdir(exist_ok=True)
    env.update(overrides)
    return {k: v for k, v in env.items() if v is not None}


# -- the chart's templates, mirrored: values (camelCase) -> dagster.yaml (snake_case)

CHART_RUN_LAUNCHER_KEYS = {  # dagsterYaml.runLauncher.k8s: every key the chart's schema allows
    "image": None, "imagePullPolicy": "image_pull_policy", "jobNamespace": "job_namespace",
    "loadInclusterConfig": "load_incluster_config", "kubeconfigFile": "kubeconfig_file",
    "envConfigMaps": "env_config_maps", "envSecrets": "env_secrets", "envVars": "env_vars",
    "volumeMounts": "volume_mounts", "volumes": "volumes", "labels": "labels", "resources": "resources",
    "failPodOnRunFailure": "fail_pod_on_run_failure", "schedulerName": "scheduler_name",
    "securityContext": "security_context", "runK8sConfig": "run_k8s_config",
}
RUN_K8S_CONFIG_KEYS = {"containerConfig": "container_config", "podSpecConfig": "pod_spec_config",
                       "podTemplateSpecMetadata": "pod_template_spec_metadata",
                       "jobSpecConfig": "job_spec_config", "jobMetadata": "job_metadata"}
S3_COMPUTE_LOG_KEYS = {"bucket": "bucket", "localDir": "local_dir", "prefix": "prefix", "useSsl": "use_ssl",
                       "verify": "verify", "verifyCertPath": "verify_cert_path", "endpointUrl": "endpoint_url",
                       "skipEmptyFiles": "skip_empty_files", "uploadInterval": "upload_interval",
                       "uploadExtraArgs": "upload_extra_args", "showUrlOnly": "show_url_only", "region": "region"}


def rendered_run_launcher(values: dict) -> dict:
    """``run_launcher`` of the chart's dagster.yaml (template dagsterYaml.runLauncher.k8s)."""
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    given = values["runLauncher"]["config"]["k8sRunLauncher"]
    unknown = set(given) - set(CHART_RUN_LAUNCHER_KEYS)
    assert not unknown, f"keys the chart does not render: {unknown}"
    config = {
        "load_incluster_config": given["loadInclusterConfig"],
        "job_namespace": given.get("jobNamespace") or NAMESPACE,
        "image_pull_policy": given["imagePullPolicy"],
        "service_account_name": values["global"]["serviceAccountName"],
        "dagster_home": DAGSTER_HOME,
        "instance_config_map": f"{FULLNAME}-instance",
        "postgres_password_secret": values["global"]["postgresqlSecretName"],
    }
    for key, name in (("envConfigMaps", "env_config_maps"), ("envSecrets", "env_secrets")):
        if given.get(key):
            config[name] = [item["name"] for item in given[key] if "name" in item]
    for key in ("kubeconfigFile", "envVars", "volumeMounts", "volumes", "labels", "resources", "schedulerName",
                "securityContext"):
        if given.get(key):
            config[CHART_RUN_LAUNCHER_KEYS[key]] = given[key]
    if given.get("failPodOnRunFailure"):
        config["fail_pod_on_run_failure"] = True
    if given.get("runK8sConfig"):
        unknown = set(given["runK8sConfig"]) - set(RUN_K8S_CONFIG_KEYS)
        assert not unknown, f"runK8sConfig keys the chart does not render: {unknown}"
        config["run_k8s_config"] = {RUN_K8S_CONFIG_KEYS[k]: v for k, v in given["runK8sConfig"].items() if v}
    return {"module": "dagster_k8s", "class": "K8sRunLauncher", "config": config}


def rendered_instance(values: dict) -> dict:
    """The chart's dagster.yaml (configmap-instance.yaml) for these values."""
    pg = values["postgresql"]
    postgres = {"postgres_db": {
        "username": pg["postgresqlUsername"], "password": {"env": "DAGSTER_PG_PASSWORD"},
        "hostname": pg["postgresqlHost"], "db_name": pg["postgresqlDatabase"], "port": pg["service"]["port"],
        "params": pg.get("postgresqlParams", {}),
    }}
    queued = values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    logs = values["computeLogManager"]
    assert logs["type"] == "S3ComputeLogManager"
    s3 = logs["config"]["s3ComputeLogManager"]
    assert not set(s3) - set(S3_COMPUTE_LOG_KEYS), f"keys the chart does not render: {set(s3) - set(S3_COMPUTE_LOG_KEYS)}"
    return {
        "scheduler": {"module": "dagster._core.scheduler", "class": "DagsterDaemonScheduler"},
        "schedule_storage": {"module": "dagster_postgres.schedule_storage", "class": "PostgresScheduleStorage",
                             "config": postgres},
        "run_launcher": rendered_run_launcher(values),
        "run_storage": {"module": "dagster_postgres.run_storage", "class": "PostgresRunStorage", "config": postgres},
        "event_log_storage": {"module": "dagster_postgres.event_log", "class": "PostgresEventLogStorage",
                              "config": postgres},
        "run_coordinator": {"module": "dagster._core.run_coordinator", "class": "QueuedRunCoordinator",
                            "config": {"max_concurrent_runs": queued["maxConcurrentRuns"]}},
        "compute_logs": {"module": "dagster_aws.s3.compute_log_manager", "class": "S3ComputeLogManager",
                         "config": {S3_COMPUTE_LOG_KEYS[k]: v for k, v in s3.items()}},
        "telemetry": {"enabled": values["telemetry"]["enabled"]},
    }


def code_server_container_context(values: dict) -> dict:
    """The container context the chart gives the code server (dagsterUserDeployments.k8sContainerContext,
    includeConfigInLaunchedRuns): what the runs it launches inherit."""
    deployment = code_server(values)
    assert deployment["includeConfigInLaunchedRuns"]["enabled"]
    k8s = {
        "image_pull_policy": deployment["image"]["pullPolicy"],
        "env_config_maps": [f"{FULLNAME}-{deployment['name']}-user-env",
                            *[m["name"] for m in deployment.get("envConfigMaps", [])]],
        "namespace": NAMESPACE,
        "service_account_name": values["global"]["serviceAccountName"],
    }
    if deployment.get("envSecrets"):
        k8s["env_secrets"] = [s["name"] for s in deployment["envSecrets"]]
    for key, name in (("volumeMounts", "volume_mounts"), ("volumes", "volumes"), ("labels", "labels"),
                      ("resources", "resources")):
        if deployment.get(key):
            k8s[name] = deployment[key]
    if isinstance(deployment.get("env"), list):
        k8s["env"] = deployment["env"]
    return {"k8s": k8s}


def image_name(values: dict) -> str:
    image = code_server(values)["image"]
    return f"{image['repository']}:{image['tag']}"


# -- the image

def test_the_lockfile_matches_pyproject():
    out = subprocess.run([str(BIN / "uv"), "lock", "--check", "--offline"], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_the_lockfile_installs_the_image_environment(tmp_path):
    """What the Dockerfile's ``uv sync --locked`` would install, as a dry run (nothing downloaded):
    every locked package has a distribution for CPython 3.11 on Linux, and the deployment's
    modules are there at the Dagster version."""
    out = subprocess.run([str(BIN / "uv"), "sync", "--locked", "--no-dev", "--extra", "connect", "--no-editable",
                          "--dry-run", "--python", sys.executable],
                         cwd=REPO, capture_output=True, text=True,
                         env={**os.environ, "UV_PROJECT_ENVIRONMENT": str(tmp_path / "venv")})
    assert out.returncode == 0, out.stderr
    plan = dict(re.findall(r"^ \+ ([A-Za-z0-9_.\-]+)==(\S+)", out.stderr + out.stdout, re.M))
    assert plan["dagster"] == "1.13.27"
    for integration in ("dagster-postgres", "dagster-k8s", "dagster-aws", "dagster-pyspark", "dagster-dbt"):
        assert plan[integration] == "0.29.27", integration
    assert "pyspark" in plan and "dagster-webserver" in plan
    assert "pytest" not in plan  # the image has no test extras
    # Spark Connect's client (REGCALC_SPARK_REMOTE), as pyspark's own `connect` extra requires it
    assert {"grpcio", "grpcio-status", "googleapis-common-protos", "zstandard", "pandas", "pyarrow"} <= set(plan)
    assert not (tmp_path / "venv").exists()


def test_the_dockerfile_installs_the_lockfile_as_the_makefile_installs():
    dockerfile = (REPO / "Dockerfile").read_text()
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^FROM python:3\.11-slim", dockerfile, re.M)
    assert "openjdk-17-jre-headless" in dockerfile  # the JRE 17 Spark needs, Debian's package
    assert "COPY --chown=regcalc:regcalc pyproject.toml uv.lock" in dockerfile
    syncs = re.findall(r"^RUN uv sync (.*)$", dockerfile, re.M)
    assert syncs and all("--locked" in s and "--no-dev" in s and "--extra connect" in s for s in syncs)
    # the same packages removed after the install as `make install` removes
    removed = re.search(r"uv pip uninstall .*? (sqlglot\S* .*?) \|\| true", makefile).group(1).split()
    assert re.search(r"^RUN uv pip uninstall --python \S+ " + " ".join(removed) + r" \|\| true$", dockerfile, re.M)
    # the image's command is the code server the chart starts: the same module
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", dockerfile, re.M).group(1))
    assert cmd[:3] == ["dagster", "api", "grpc"]
    assert cmd[cmd.index("--module-name") + 1] == "regcalc_assets.definitions"
    grpc_args = yaml.safe_load((HELM / "values.yaml").read_text())["dagster-user-deployments"]["deployments"][0][
        "dagsterApiGrpcArgs"]
    assert grpc_args == ["--module-name", "regcalc_assets.definitions"]


def test_the_build_context_holds_the_packages_and_not_the_local_state():
    lines = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert lines[0] == "*"  # everything out, then only what the image needs back in
    kept = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    packages = re.search(r'include = \[(.*?)\]', (REPO / "pyproject.toml").read_text()).group(1)
    assert kept == {"pyproject.toml", "uv.lock", *re.findall(r'"(\w+)\*"', packages)}
    dockerfile = (REPO / "Dockerfile").read_text()
    assert all(f"COPY --chown=regcalc:regcalc {p} ./{p}" in dockerfile for p in kept - {"pyproject.toml", "uv.lock"})


# -- the Helm values against Dagster's own schemas

def test_the_run_launcher_config_validates_against_dagster_k8s(values):
    from dagster._config import process_config, resolve_to_config_type
    from dagster_k8s import K8sRunLauncher

    rendered = rendered_run_launcher(values)["config"]
    result = process_config(resolve_to_config_type(K8sRunLauncher.config_type()), rendered)
    assert result.success, [e.message for e in result.errors]
    assert result.value["run_k8s_config"]["job_spec_config"]["ttlSecondsAfterFinished"] == 86400
    assert "env_secrets" not in result.value  # no static AWS keys; the runs get the code server's secrets
    # a key dagster-k8s does not know is refused: the validation is real
    bad = process_config(resolve_to_config_type(K8sRunLauncher.config_type()), {**rendered, "run_k8s_confg": {}})
    assert not bad.success


def test_the_instance_config_names_only_modules_the_image_has_and_validates(values, monkeypatch):
    import importlib

    from dagster._config import process_config, resolve_to_config_type
    from dagster_postgres.utils import pg_config, pg_url_from_config

    instance = rendered_instance(values)
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", "dummy")
    # every configurable class: importable here, from packages the lockfile pins, and its config valid
    lock = (REPO / "uv.lock").read_text()
    for section, entry in instance.items():
        if "module" not in entry:
            continue
        package = entry["module"].split(".")[0]
        if package != "dagster":
            assert f'name = "{package.replace("_", "-")}"' in lock, package
        klass = getattr(importlib.import_module(entry["module"]), entry["class"])
        if "config" in entry:
            result = process_config(resolve_to_config_type(klass.config_type()), entry["config"])
            assert result.success, (section, [e.message for e in result.errors])
    # PostgreSQL over TLS only
    config = process_config(resolve_to_config_type(pg_config()), instance["run_storage"]["config"]).value
    assert "sslmode=require" in pg_url_from_config(config)


def test_the_rendered_dagster_yaml_loads_as_an_instance_config(values, tmp_path, monkeypatch):
    from dagster._core.instance.config import dagster_instance_config

    monkeypatch.setenv("DAGSTER_PG_PASSWORD", "dummy")
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(rendered_instance(values)))
    config, custom = dagster_instance_config(str(tmp_path))
    assert custom is None
    assert config["run_launcher"]["class"] == "K8sRunLauncher"
    assert config["compute_logs"]["config"]["bucket"]


class _Recorder:
    """Stands in for the Kubernetes API (and the instance) of a K8sRunLauncher: keeps the job."""

    def __init__(self):
        self.jobs = []

    def create_namespaced_job_with_retries(self, body, namespace):
        self.jobs.append((body, namespace))

    def add_run_tags(self, run_id, tags):
        pass

    def report_engine_event(self, *args, **kwargs):
        pass


def launched_job(values, tmp_path, tags: dict) -> tuple[dict, str]:
    """The Kubernetes job (as JSON) and namespace that dagster-k8s's K8sRunLauncher, configured as
    the chart renders it, creates for a run of ``eod_job`` from the regcalc code server."""
    from dagster._core.code_pointer import ModuleCodePointer
    from dagster._core.origin import JobPythonOrigin, RepositoryPythonOrigin
    from dagster._core.storage.dagster_run import DagsterRun
    from dagster._serdes import ConfigurableClassData
    from dagster_k8s import K8sRunLauncher
    from kubernetes.client import ApiClient

    # the chart's config, but the kubeconfig of a cluster that is never called instead of in-cluster
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "none",
        "clusters": [{"name": "none", "cluster": {"server": "https://127.0.0.1:9"}}],
        "contexts": [{"name": "none", "context": {"cluster": "none", "user": "none"}}],
        "users": [{"name": "none", "user": {"token": "none"}}]}))
    config = {**rendered_run_launcher(values)["config"], "load_incluster_config": False,
              "kubeconfig_file": str(kubeconfig)}
    launcher = ConfigurableClassData("dagster_k8s", "K8sRunLauncher", yaml.safe_dump(config)).rehydrate(K8sRunLauncher)
    recorder = _Recorder()
    launcher.register_instance(recorder)
    launcher._api_client = recorder  # noqa: SLF001 - no cluster here
    origin = RepositoryPythonOrigin(
        executable_path="/opt/regcalc/venv/bin/python",
        code_pointer=ModuleCodePointer("regcalc_assets.definitions", "defs", working_directory=None),
        container_image=image_name(values), container_context=code_server_container_context(values))
    run = DagsterRun(job_name="eod_job", run_id="0f0e0d0c-0b0a-0908-0706-050403020100", tags=tags,
                     job_code_origin=JobPythonOrigin("eod_job", origin))
    launcher._launch_k8s_job_with_args("dagster-run-0f0e0d0c", ["dagster", "api", "execute_run", "{}"], run)  # noqa: SLF001
    (body, namespace), = recorder.jobs
    return ApiClient().sanitize_for_serialization(body), namespace


@pytest.fixture(scope="module")
def eod_run_tags() -> dict[str, str]:
    """The tags every run of eod_job carries: the job's tags, normalized as Dagster stores them."""
    from dagster._utils.tags import normalize_tags

    from regcalc_assets.schedules import eod_job

    return dict(normalize_tags(eod_job.tags))


def test_the_eod_run_pod_gets_its_own_resources_the_landing_zone_and_the_secrets(values, tmp_path, eod_run_tags):
    job, namespace = launched_job(values, tmp_path, eod_run_tags)
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert namespace == NAMESPACE and pod["serviceAccountName"] == values["global"]["serviceAccountName"]
    assert container["image"] == image_name(values)
    assert container["resources"] == WANTED_RUN_POD  # the job's tags, over the code server's resources
    assert job["spec"]["ttlSecondsAfterFinished"] == 86400
    landing = {"name": "landing", "persistentVolumeClaim": {"claimName": "regcalc-landing", "readOnly": True}}
    assert landing in pod["volumes"]
    assert {"name": "landing", "mountPath": "/landing", "readOnly": True} in container["volumeMounts"]
    env = {e["name"]: e for e in container["env"]}
    assert env["REGCALC_LANDING"]["value"] == "/landing" and env["REGCALC_DEPLOYMENT"]["value"] == "k8s"
    for key in DUMMY_SECRETS:
        assert env[key]["valueFrom"]["secretKeyRef"] == {"name": "regcalc-secrets", "key": key}
    assert env["DAGSTER_PG_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "dagster-postgresql-secret"
    assert not any(name.startswith("AWS_ACCESS_KEY") or name.startswith("AWS_SECRET") for name in env)


def test_without_the_tags_a_run_pod_would_get_the_code_servers_resources(values, tmp_path):
    """Why the tags: the chart passes the code server's resources into its runs, over runK8sConfig
    (a run of the implicit asset job, a selection materialized from the UI, gets these)."""
    job, _ = launched_job(values, tmp_path, {})
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["resources"] == code_server(values)["resources"] != WANTED_RUN_POD


def test_the_run_pod_job_is_a_valid_kubernetes_job(values, tmp_path, eod_run_tags):
    import kubernetes_validate

    job, _ = launched_job(values, tmp_path, eod_run_tags)
    kubernetes_validate.validate(job, K8S_VERSION, strict=True)


def test_every_job_of_the_deployment_sets_its_run_pod_resources():
    from dagster._utils.tags import normalize_tags

    from regcalc_assets.schedules import eod_job, unassigned_job

    for job in (eod_job, unassigned_job):
        config = json.loads(normalize_tags(job.tags)["dagster-k8s/config"])
        assert config["container_config"]["resources"] == WANTED_RUN_POD, job.name


def test_the_values_name_every_secret_and_no_static_aws_key(values):
    deployment = code_server(values)
    secret_keys = {e["valueFrom"]["secretKeyRef"]["key"] for e in deployment["env"] if "valueFrom" in e}
    assert set(DUMMY_SECRETS) <= secret_keys
    assert not deployment.get("envSecrets")  # every key by name, none imported wholesale
    text = (HELM / "values.yaml").read_text()
    assert "AWS_ACCESS_KEY_ID" not in text and "AWS_SECRET_ACCESS_KEY" not in text
    assert values["serviceAccount"]["annotations"]["eks.amazonaws.com/role-arn"].startswith("arn:aws:iam::")
    for component in (values["dagsterWebserver"], values["dagsterDaemon"], deployment):
        assert component["resources"]["limits"]["cpu"] and component["resources"]["limits"]["memory"]
    env = {e["name"]: e.get("value") for e in deployment["env"]}
    assert env["REGCALC_DEPLOYMENT"] == "k8s" and env["REGCALC_SCHEDULES"] == "running"


# -- the manifests the project ships

def shipped_manifests() -> list[Path]:
    return sorted(p for p in HELM.glob("*.yaml") if p.name != "values.yaml")


def test_the_project_ships_the_landing_zone_claim():
    assert HELM / "landing-pvc.yaml" in shipped_manifests()


@pytest.mark.parametrize("manifest", shipped_manifests(), ids=lambda p: p.name)
def test_shipped_manifests_pass_kubernetes_validate_strict(manifest):
    out = subprocess.run([str(BIN / "kubernetes-validate"), "--strict", "-k", K8S_VERSION, str(manifest)],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "passed" in out.stdout


def test_the_claim_is_the_one_the_values_mount(values):
    documents = list(yaml.safe_load_all((HELM / "landing-pvc.yaml").read_text()))
    (claim,) = [d for d in documents if d["kind"] == "PersistentVolumeClaim"]
    (volume,) = [v for v in code_server(values)["volumes"] if v["name"] == "landing"]
    assert volume["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    (pv,) = [d for d in documents if d["kind"] == "PersistentVolume"]
    assert claim["spec"]["volumeName"] == pv["metadata"]["name"] and pv["spec"]["csi"]["driver"] == "efs.csi.aws.com"


# -- the definitions with the production environment

def test_definitions_validate_with_the_production_environment(values, tmp_path):
    env = production_env(values, tmp_path)
    out = subprocess.run([str(BIN / "dagster"), "definitions", "validate", "-m", "regcalc_assets.definitions"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]


def test_a_code_server_without_a_shared_rule_store_refuses_to_start(values, tmp_path):
    env = production_env(values, tmp_path, REGCALC_RULES_DSN=None)
    out = subprocess.run([str(BIN / "dagster"), "definitions", "validate", "-m", "regcalc_assets.definitions"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode != 0
    assert "set REGCALC_RULES_DSN" in out.stdout + out.stderr


def test_the_schedules_run_by_default_only_where_regcalc_schedules_says_so(tmp_path):
    code = ("import json; from regcalc_assets.schedules import eod_schedule, unassigned_schedule; "
            "print(json.dumps([eod_schedule.default_status.value, unassigned_schedule.default_status.value]))")
    base = {k: v for k, v in os.environ.items() if k != "REGCALC_SCHEDULES"}
    statuses = {}
    for setting in (None, "running", "stopped"):
        env = base if setting is None else {**base, "REGCALC_SCHEDULES": setting}
        out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                             check=True)
        statuses[setting] = json.loads(out.stdout.strip().splitlines()[-1])
    assert statuses == {None: ["STOPPED", "STOPPED"], "running": ["RUNNING", "RUNNING"],
                        "stopped": ["STOPPED", "STOPPED"]}


# -- the local UI (`make ui`)

def test_make_ui_points_the_sensor_at_the_demo_landing_zone_unless_told(tmp_path):
    """`make ui` with stand-ins for the virtualenv's programs: the dagster it starts sees
    REGCALC_LANDING = $REGCALC_HOME/demo-landing (where `make demo` writes), or the caller's."""
    bin_dir = tmp_path / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    for name in ("python", "uv"):
        (bin_dir / name).write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "dagster").write_text('#!/bin/sh\necho "landing=$REGCALC_LANDING home=$DAGSTER_HOME args=$*"\n')
    for path in bin_dir.iterdir():
        path.chmod(0o755)
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if k not in ("REGCALC_LANDING", "REGCALC_HOME", "MAKEFLAGS")}

    def make_ui(**extra) -> str:
        out = subprocess.run(["make", "-s", "-C", str(REPO), "ui", f"VENV={tmp_path / 'venv'}", f"REGCALC_HOME={home}"],
                             env={**env, **extra}, capture_output=True, text=True, check=True, timeout=60)
        return out.stdout.strip().splitlines()[-1]

    assert make_ui() == f"landing={home}/demo-landing home={home}/dagster args=dev -w workspace.yaml"
    assert make_ui(REGCALC_LANDING="/srv/landing").startswith("landing=/srv/landing ")
