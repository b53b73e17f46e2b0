"""The UI and its API behind a login (issue 16, section 6), checked without a cluster: the Helm
values give the official chart's webserver a second, read-only instance and put both behind an
internal Application Load Balancer that authenticates every request with OIDC; the full
webserver's host is limited to the operators' network; a NetworkPolicy admits nothing but the load
balancer to the webservers' pods.

As ``test_deploy.py`` does for the instance, the chart's templates are mirrored here (the Ingress
of ``templates/ingress.yaml``, the webservers' names and component labels of its helpers) and the
values' keys are checked against the keys the chart's values schema allows; the rendered Ingress
passes ``kubernetes-validate --strict``. What the load balancer does with the annotations (AWS
Load Balancer Controller) only a real cluster can show.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess

import pytest
import yaml

from regcalc_tests.test_deploy import BIN, FULLNAME, HELM, K8S_VERSION, NAMESPACE, RELEASE, REPO

ALB = "alb.ingress.kubernetes.io/"
# the chart's values schema (helm/dagster/schema: Webserver and Ingress models), the keys it allows
CHART_WEBSERVER_KEYS = {
    "dbStatementTimeout", "dbPoolRecycle", "logLevel", "schedulerName", "volumeMounts", "volumes", "pathPrefix",
    "replicaCount", "image", "nameOverride", "service", "workspace", "env", "envConfigMaps", "envSecrets",
    "deploymentLabels", "labels", "nodeSelector", "affinity", "tolerations", "podSecurityContext",
    "securityContext", "resources", "readinessProbe", "livenessProbe", "startupProbe", "annotations",
    "enableReadOnly"}
CHART_INGRESS_KEYS = {"enabled", "apiVersion", "labels", "annotations", "ingressClassName", "flower",
                      "dagsterWebserver", "readOnlyDagsterWebserver"}
CHART_INGRESS_ENDPOINT_KEYS = {"host", "path", "pathType", "tls", "precedingPaths", "succeedingPaths"}
PATH_TYPES = {"Exact", "Prefix", "ImplementationSpecific"}
OIDC_KEYS = {"issuer", "authorizationEndpoint", "tokenEndpoint", "userInfoEndpoint", "secretName"}


@pytest.fixture(scope="module")
def values() -> dict:
    return yaml.safe_load((HELM / "values.yaml").read_text())


# -- the chart's templates, mirrored

def webserver_service(values: dict, read_only: bool = False) -> str:
    """The chart's ``dagster.webserver.fullname``: release, nameOverride (default ``webserver``),
    ``-read-only`` for the read-only instance."""
    name = values["dagsterWebserver"].get("nameOverride") or "webserver"
    return f"{RELEASE}-{name}"[:63].rstrip("-") + ("-read-only" if read_only else "")


def webserver_component(read_only: bool = False) -> str:
    """The chart's ``dagster.webserver.componentName`` (the pods' ``component`` label)."""
    return "dagster-webserver" + ("-read-only" if read_only else "")


def rendered_ingress(values: dict) -> dict:
    """The Ingress of the chart's ``templates/ingress.yaml`` (networking.k8s.io/v1) for ``values``:
    one rule for the webserver's host, one for the read-only webserver's when it is enabled."""
    ingress, webserver = values["ingress"], values["dagsterWebserver"]
    port = (webserver.get("service") or {}).get("port", 80)

    def rule(endpoint: dict, service: str) -> dict:
        def extra(p):
            return {"path": p["path"], "pathType": p["pathType"],
                    "backend": {"service": {"name": p["serviceName"], "port": {"number": p["servicePort"]}}}}

        main = {"path": endpoint.get("path") or "/*", "pathType": endpoint["pathType"],
                "backend": {"service": {"name": service, "port": {"number": port}}}}
        paths = [*map(extra, endpoint["precedingPaths"]), main, *map(extra, endpoint["succeedingPaths"])]
        return {"host": endpoint["host"], "http": {"paths": paths}}

    endpoints = [(ingress["dagsterWebserver"], webserver_service(values))]
    if webserver.get("enableReadOnly"):
        endpoints.append((ingress["readOnlyDagsterWebserver"], webserver_service(values, read_only=True)))
    tls = [{"hosts": [e["host"]], "secretName": e["tls"]["secretName"]} for e, _ in endpoints if e["tls"]["enabled"]]
    spec = {"rules": [rule(e, s) for e, s in endpoints], **({"tls": tls} if tls else {})}
    if ingress.get("ingressClassName"):
        spec["ingressClassName"] = ingress["ingressClassName"]
    metadata = {"name": f"{FULLNAME}-ingress", "namespace": NAMESPACE,
                "labels": {"app.kubernetes.io/name": "dagster", "app.kubernetes.io/instance": RELEASE,
                           **{k: str(v) for k, v in (ingress.get("labels") or {}).items()}},
                "annotations": {k: str(v) for k, v in ingress["annotations"].items()}}
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": metadata, "spec": spec}


# -- the values against the chart's schema

def test_the_values_use_only_keys_the_charts_schema_allows(values):
    webserver, ingress = values["dagsterWebserver"], values["ingress"]
    assert set(webserver) <= CHART_WEBSERVER_KEYS, set(webserver) - CHART_WEBSERVER_KEYS
    assert set(ingress) <= CHART_INGRESS_KEYS, set(ingress) - CHART_INGRESS_KEYS
    for name in ("dagsterWebserver", "readOnlyDagsterWebserver"):
        endpoint = ingress[name]
        assert set(endpoint) == CHART_INGRESS_ENDPOINT_KEYS, name
        assert endpoint["pathType"] in PATH_TYPES and set(endpoint["tls"]) == {"enabled", "secretName"}
    assert all(isinstance(v, str) for v in ingress["annotations"].values()), "annotations are strings"


def test_viewers_get_a_second_read_only_webserver(values):
    assert values["dagsterWebserver"]["enableReadOnly"] is True
    rules = rendered_ingress(values)["spec"]["rules"]
    backends = {r["host"]: r["http"]["paths"][-1]["backend"]["service"]["name"] for r in rules}
    assert backends == {values["ingress"]["dagsterWebserver"]["host"]: "regcalc-webserver",
                        values["ingress"]["readOnlyDagsterWebserver"]["host"]: "regcalc-webserver-read-only"}


def test_the_rendered_ingress_is_a_valid_kubernetes_ingress(values, tmp_path):
    path = tmp_path / "ingress.yaml"
    path.write_text(yaml.safe_dump(rendered_ingress(values)))
    out = subprocess.run([str(BIN / "kubernetes-validate"), "--strict", "-k", K8S_VERSION, str(path)],
                         capture_output=True, text=True)
    assert out.returncode == 0 and "passed" in out.stdout, out.stdout + out.stderr


def test_every_request_is_authenticated_at_the_load_balancer(values):
    ingress = rendered_ingress(values)
    notes = ingress["metadata"]["annotations"]
    assert ingress["spec"]["ingressClassName"] == "alb"
    assert notes[ALB + "scheme"] == "internal"
    assert json.loads(notes[ALB + "listen-ports"]) == [{"HTTPS": 443}], "HTTPS only: no plain-HTTP listener"
    assert notes[ALB + "certificate-arn"].startswith("arn:aws:acm:")
    assert notes[ALB + "auth-type"] == "oidc"
    assert notes[ALB + "auth-on-unauthenticated-request"] == "authenticate", "no anonymous request passes"
    oidc = json.loads(notes[ALB + "auth-idp-oidc"])
    assert set(oidc) == OIDC_KEYS
    assert all(oidc[k].startswith("https://") for k in OIDC_KEYS - {"secretName"})
    assert oidc["secretName"] == "regcalc-oidc"
    assert "openid" in notes[ALB + "auth-scope"].split()
    # one Ingress, one set of annotations: the authentication covers every rule, both webservers
    services = {p["backend"]["service"]["name"] for r in ingress["spec"]["rules"] for p in r["http"]["paths"]}
    assert services == {webserver_service(values), webserver_service(values, read_only=True)}


def test_the_full_webserver_answers_only_the_operators_network(values):
    notes = rendered_ingress(values)["metadata"]["annotations"]
    conditions = {k[len(ALB + "conditions."):]: json.loads(v) for k, v in notes.items()
                  if k.startswith(ALB + "conditions.")}
    assert set(conditions) == {webserver_service(values)}, "a condition on the full webserver's backend only"
    [condition] = conditions[webserver_service(values)]
    assert condition["field"] == "source-ip"
    networks = [ipaddress.ip_network(c) for c in condition["sourceIpConfig"]["values"]]
    assert networks and all(n.is_private for n in networks)


def test_the_network_policy_admits_only_the_load_balancer_to_both_webservers(values):
    policy = yaml.safe_load((HELM / "webserver-networkpolicy.yaml").read_text())
    assert policy["kind"] == "NetworkPolicy" and policy["metadata"]["namespace"] == NAMESPACE
    [selector] = policy["spec"]["podSelector"]["matchExpressions"]
    assert (selector["key"], selector["operator"]) == ("component", "In")
    assert set(selector["values"]) == {webserver_component(), webserver_component(read_only=True)}
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    [rule] = policy["spec"]["ingress"]
    assert all(set(source) == {"ipBlock"} for source in rule["from"]), "only the load balancer's subnets"
    port = (values["dagsterWebserver"].get("service") or {}).get("port", 80)
    assert rule["ports"] == [{"protocol": "TCP", "port": port}]


def test_the_readme_names_the_oidc_secret_and_the_security_section():
    readme = (REPO / "README.md").read_text()
    assert "`regcalc-oidc`" in readme and "clientID" in readme and "clientSecret" in readme
    assert readme.index("## Deploy") < readme.index("## Security") < readme.index("## Tests and benchmarks")
