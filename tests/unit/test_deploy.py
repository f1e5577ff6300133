"""What `deploy/` describes fits the code it runs: the image carries every file the services read,
each container is given the variables its service reads and the addresses of the others, and its
command, ports and probes are the service's own.

No Docker or Kubernetes here, so the manifests are read, not run; these are the mistakes that
would otherwise show only at a city's first deployment.
"""

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from contracts.settings import SHARED
from services.intake.settings import IntakeSettings
from services.notifier.settings import NotifierSettings
from services.oversight.settings import OversightSettings
from services.router.settings import RouterSettings

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = {"intake": IntakeSettings, "router": RouterSettings, "notifier": NotifierSettings,
            "oversight": OversightSettings}
COMPOSE = yaml.safe_load((ROOT / "deploy/compose.yaml").read_text())
K8S = list(yaml.safe_load_all((ROOT / "deploy/k8s/mesh.yaml").read_text()))
FROM_DEPLOYMENT = object()  # a value the deployment supplies (a Secret, a site ConfigMap, Compose's .env)


def k8s(kind: str, name: str) -> dict:
    [found] = [d for d in K8S if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


def k8s_container(name: str) -> dict:
    return k8s("Deployment", name)["spec"]["template"]["spec"]["containers"][0]


def k8s_environment(container: dict) -> dict:
    """Every variable a container gets: its own, and the keys of the ConfigMaps it takes whole."""
    env = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(k8s("ConfigMap", source["configMapRef"]["name"])["data"])
    for variable in container.get("env", []):
        env[variable["name"]] = variable.get("value", FROM_DEPLOYMENT)
    return env


def compose_environment(service: str) -> dict:
    env = dict(COMPOSE["services"][service]["environment"])
    return {name: FROM_DEPLOYMENT if "${" in str(value) else value for name, value in env.items()}


ENVIRONMENTS = [pytest.param(name, compose_environment(name), id=f"compose-{name}") for name in SETTINGS] + [
    pytest.param(name, k8s_environment(k8s_container(name)), id=f"k8s-{name}") for name in SETTINGS]


def variables_read(settings: type) -> set[str]:
    prefix = settings.model_config["env_prefix"]
    return {prefix + field.upper() for field in settings.model_fields} | set(SHARED.values())


def test_every_file_the_services_read_ships_in_the_package(tmp_path):
    """The image installs the mesh as a package: a data file the packaging leaves out (the category
    list, once) is missing in every container, and intake and the router do not start."""
    # From a copy as the image's build sees it: an egg-info left by `pip install -e` lists files
    # of its own, and setuptools would take them from there.
    source, built = tmp_path / "source", tmp_path / "built"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for top in ("contracts", "services"):
        shutil.copytree(ROOT / top, source / top, ignore=ignore)
    shutil.copy(ROOT / "pyproject.toml", source)
    wanted = {path.relative_to(source) for path in source.rglob("*")
              if path.is_file() and path.suffix != ".py" and path.name not in ("README.md", "pyproject.toml")}
    subprocess.run([sys.executable, "-c", "from setuptools import setup; setup()", "-q", "build_py",
                    "--build-lib", str(built)], cwd=source, check=True, capture_output=True)
    assert wanted, "the services read data files; none were found"
    assert sorted(str(p) for p in wanted if not (built / p).is_file()) == []


@pytest.mark.parametrize(("service", "env"), ENVIRONMENTS)
def test_a_container_is_given_only_variables_its_service_reads(service, env):
    """A misspelt variable is configuration that silently does nothing."""
    own = SETTINGS[service].model_config["env_prefix"]
    unread = [name for name in env if name.startswith(own) and name not in variables_read(SETTINGS[service])]
    assert unread == []
    others = {SETTINGS[s].model_config["env_prefix"] for s in SETTINGS} - {own}
    for name in env:
        prefix = next((p for p in others if name.startswith(p)), None)
        if prefix:  # a ConfigMap shared by all: each of its keys is read by the service it names
            [owner] = [s for s in SETTINGS if SETTINGS[s].model_config["env_prefix"] == prefix]
            assert name in variables_read(SETTINGS[owner]), name


@pytest.mark.parametrize(("service", "env"), ENVIRONMENTS)
def test_a_container_reaches_the_other_parts_by_their_names_not_by_loopback(service, env):
    """Every setting whose default is an address on 127.0.0.1 (Kafka, PostgreSQL, oversight for
    intake's status lookups, the districts' webhook for the notifier) is set for a container: in a
    container, nothing else listens on its loopback."""
    settings = SETTINGS[service]
    prefix = settings.model_config["env_prefix"]
    loopback = [name for name, field in settings.model_fields.items()
                if name != "host" and isinstance(field.default, str) and "127.0.0.1" in field.default]
    assert loopback, "the defaults are the local set-up's"
    for field in loopback:
        names = {prefix + field.upper(), SHARED.get(field)}
        assert names & set(env), f"{service}: {' or '.join(n for n in names if n)} is not set"
    assert [v for v in env.values() if "127.0.0.1" in str(v) or "localhost" in str(v)] == []
    assert env[prefix + "HOST"] == "0.0.0.0", "else its port is closed to the other containers"


@pytest.mark.parametrize("service", SETTINGS)
def test_each_container_runs_its_service_on_its_port(service):
    for command in (COMPOSE["services"][service]["command"], k8s_container(service)["command"]):
        assert command[:2] == ["python", "-m"] and command[2] == f"services.{service}"
        assert importlib.util.find_spec(command[2] + ".__main__") is not None
    probe = k8s_container(service)["readinessProbe"]["httpGet"]
    assert (probe["path"], probe["port"]) == ("/healthz", SETTINGS[service]().port)
    for published in COMPOSE["services"][service].get("ports", []):
        assert published.endswith(f":{SETTINGS[service]().port}")


def test_the_topics_are_made_by_the_script_the_image_carries_before_any_service_starts():
    """Kubernetes made them in a Job beside the services, which could start first and be given a
    broker's default topics (one partition, kept 7 days): each pod makes them first now."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    first = [[c["command"] for c in d["spec"]["template"]["spec"].get("initContainers", [])]
             for d in K8S if d["kind"] == "Deployment"]
    assert len(first) == len(SETTINGS) and all(commands == [["python", "deploy/topics.py"]] for commands in first)
    assert COMPOSE["services"]["intake"]["depends_on"]["topics"]["condition"] == "service_completed_successfully"
    for command in (COMPOSE["services"]["topics"]["command"], *(c for commands in first for c in commands)):
        assert command[0] == "python" and (ROOT / command[1]).is_file()
        assert f"COPY {command[1]} {command[1]}" in dockerfile


def test_the_image_is_built_here_and_named_alike_everywhere():
    """Nothing publishes a mesh1022 image: Compose builds it from the Dockerfile, Kubernetes is given
    the same fixed tag (`latest` would be pulled again by every node, from nowhere)."""
    built = COMPOSE["x-service"]
    assert (ROOT / "deploy" / built["build"]["context"] / built["build"]["dockerfile"]).is_file()
    images = {built["image"]} | {c["image"] for d in K8S if d["kind"] == "Deployment"
                                 for c in d["spec"]["template"]["spec"]["containers"]
                                 + d["spec"]["template"]["spec"].get("initContainers", [])}
    assert len(images) == 1 and not built["image"].endswith(":latest")


@pytest.mark.parametrize("service", SETTINGS)
def test_no_service_is_given_another_services_secrets(service):
    secrets = [s["secretRef"]["name"] for s in k8s_container(service).get("envFrom", []) if "secretRef" in s]
    secrets += [v["valueFrom"]["secretKeyRef"]["name"] for v in k8s_container(service).get("env", [])
                if "secretKeyRef" in v.get("valueFrom", {})]
    assert set(secrets) == {f"mesh1022-{service}"}
    assert COMPOSE["services"][service]["env_file"] == [{"path": f"{service}.env", "required": False}]


def test_no_secret_is_written_in_the_manifests():
    secret_like = ("PASSWORD", "_KEY", "TOKEN", "SECRET")
    for service in SETTINGS:
        for name, value in {**compose_environment(service), **k8s_environment(k8s_container(service))}.items():
            if any(part in name for part in secret_like):
                assert value is FROM_DEPLOYMENT, name



def test_the_local_secrets_file_is_readable_by_its_owner_alone(tmp_path):
    """`make run`'s secrets (oversight's tokens, the audit key) are never readable by another user
    of the machine: not while the file is written, and not in a file an older version left 0644."""
    sys.path.insert(0, str(ROOT / "deploy" / "local"))
    import mesh

    old_umask = os.umask(0o022)
    try:
        fresh = tmp_path / "fresh" / "secrets.env"
        made = mesh.secrets_env(fresh)
        assert fresh.stat().st_mode & 0o777 == 0o600 and made["OVERSIGHT_AUDIT_KEY"]
        older = tmp_path / "secrets.env"
        older.write_text(fresh.read_text())
        older.chmod(0o644)
        assert mesh.secrets_env(older) == made
        assert older.stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(old_umask)
