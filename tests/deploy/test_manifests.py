"""The deployment files, checked by the linters and schemas available without a Docker
engine or a cluster: hadolint (Dockerfile), yamllint (all YAML), kubernetes-validate (the
Kubernetes objects against the API's own schemas), and JSON schemas written for the
fields used (compose file, KServe InferenceService)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
SCHEMAS = Path(__file__).parent / "schemas"
BIN = Path(sys.executable).parent
YAMLLINT = ("{extends: default, rules: {line-length: {max: 100}, document-start: disable, "
            "truthy: {check-keys: false}}}")


def tool(name: str) -> str:
    found = shutil.which(name, path=str(BIN)) or shutil.which(name)
    assert found is not None, f"{name} is not installed (pip install the dev tools)"
    return found


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def test_dockerfile_passes_hadolint() -> None:
    result = subprocess.run([tool("hadolint"), "--no-color", str(ROOT / "Dockerfile")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_catches_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN cd /app && pip install numpy\nCMD python -m server\n")
    result = subprocess.run([tool("hadolint"), "--no-color", str(bad)],
                            capture_output=True, text=True)
    assert result.returncode != 0
    assert "DL3006" in result.stdout and "DL3025" in result.stdout


def test_dockerfile_essentials() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert "USER 10001:10001" in text
    assert "EXPOSE 8000 8001 8002" in text
    assert "/v2/health/ready" in text and "HEALTHCHECK" in text
    assert 'VOLUME ["/models"]' in text
    assert "ARG TARGET=cpu" in text and "cupy" not in text  # CuPy comes with the [gpu] extra


def test_yaml_passes_yamllint() -> None:
    files = sorted(str(p) for p in DOCKER.rglob("*.yaml"))
    assert len(files) >= 6
    result = subprocess.run([tool("yamllint"), "-s", "-d", YAMLLINT, *files],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_kubernetes_objects_validate_against_the_api_schemas() -> None:
    files = sorted(str(p) for p in (DOCKER / "kubernetes").glob("*.yaml"))
    result = subprocess.run([tool("kubernetes-validate"), "--strict", *files],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("passed") == len(files)


def test_kubernetes_validate_catches_a_bad_deployment(tmp_path: Path) -> None:
    deployment = load(DOCKER / "kubernetes" / "deployment.yaml")
    probe = deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
    probe["httpGet"]["pathh"] = probe["httpGet"].pop("path")
    bad = tmp_path / "deployment.yaml"
    bad.write_text(yaml.safe_dump(deployment))
    result = subprocess.run([tool("kubernetes-validate"), "--strict", str(bad)],
                            capture_output=True, text=True)
    assert result.returncode != 0


def test_probes_ports_and_autoscaling_fit_together() -> None:
    deployment = load(DOCKER / "kubernetes" / "deployment.yaml")
    service = load(DOCKER / "kubernetes" / "service.yaml")
    hpa = load(DOCKER / "kubernetes" / "hpa.yaml")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": "http"}
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": 8000, "grpc": 8001, "metrics": 8002}
    args = container["args"]
    for flag, port in (("--http-port", 8000), ("--grpc-port", 8001), ("--metrics-port", 8002)):
        assert args[args.index(flag) + 1] == str(port)
    assert {p["targetPort"] for p in service["spec"]["ports"]} == set(ports)
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert "cpu" in container["resources"]["requests"]  # the HPA's utilization needs it


def test_inferenceservice_schema() -> None:
    schema = json.loads((SCHEMAS / "inferenceservice.json").read_text())
    service = load(DOCKER / "kserve" / "inferenceservice.yaml")
    jsonschema.validate(service, schema)
    container = service["spec"]["predictor"]["containers"][0]
    port = container["ports"][0]["containerPort"]
    assert container["args"][container["args"].index("--http-port") + 1] == str(port)
    assert container["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": port}
    service["spec"]["predictor"]["containers"][0]["name"] = "server"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(service, schema)


def test_compose_schema() -> None:
    schema = json.loads((SCHEMAS / "compose.json").read_text())
    compose = load(DOCKER / "compose.yaml")  # safe_load applies the YAML merge keys
    jsonschema.validate(compose, schema)
    services = compose["services"]
    assert services["server"]["build"]["context"] == ".."
    assert services["server-gpu"]["build"]["args"] == {"TARGET": "gpu"}
    assert services["server"]["volumes"][0]["target"] == "/models"
    del services["server"]["healthcheck"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(compose, schema)
