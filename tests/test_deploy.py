"""deploy/ as an operator uses it: the compose files against the Compose spec's schema,
the Kubernetes manifests against Kubernetes' own schemas, the systemd unit through
systemd-analyze, and what each of them runs — the image's start command, its health
check, the migration, the emulators of the rehearsal — run here against miniship itself.
Every environment variable deploy/ names must be one miniship reads."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from pydantic import AliasChoices
from pydantic_settings import BaseSettings

import platforms
from handlers.config import Settings, load_config
from handlers.ops import Ops
from handlers.slack import SlackSettings
from tests.test_bot import REPO, clean_env, free_port, read_env_file, running_console

DEPLOY = REPO / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
MINISHIP = Path(sys.executable).with_name("miniship")  # what `pip install .` made
STOP_SECONDS = Settings.model_fields["stop_seconds"].default
OLDEST_KUBERNETES = "1.28.0"  # the manifests use nothing newer


def yaml_documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def compose(name: str = "compose.yaml") -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / name).read_text())
    return loaded


def manifests() -> dict[tuple[str, str], dict[str, Any]]:
    """Every Kubernetes object in deploy/kubernetes, by (kind, name)."""
    out = {}
    for path in sorted(KUBERNETES.glob("*.yaml")):
        for doc in yaml_documents(path):
            out[doc["kind"], doc["metadata"]["name"]] = doc
    return out


def dockerfile() -> list[tuple[str, str]]:
    """The Dockerfile's instructions, (INSTRUCTION, rest), continuation lines joined."""
    out: list[tuple[str, str]] = []
    joined = ""
    for line in (DEPLOY / "Dockerfile").read_text().splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        joined += line.rstrip().removesuffix("\\") + " "
        if not line.rstrip().endswith("\\"):
            word, _, rest = joined.strip().partition(" ")
            out.append((word.upper(), " ".join(rest.split())))
            joined = ""
    return out


def instruction(word: str) -> list[str]:
    return [rest for w, rest in dockerfile() if w == word]


def seconds(duration: str) -> float:
    """A compose duration such as ``40s`` or ``1m30s``."""
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, duration
    scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    return sum(float(n) * scale[u] for n, u in parts)


# --------------------------------------------------------------------------- settings


def env_names(settings: type[BaseSettings]) -> set[str]:
    """The environment variables a settings class reads."""
    prefix = str(settings.model_config.get("env_prefix", ""))
    names = set()
    for field_name, info in settings.model_fields.items():
        names.add((prefix + field_name).upper())
        if isinstance(info.validation_alias, AliasChoices):
            names.update(str(c).upper() for c in info.validation_alias.choices)
        elif isinstance(info.validation_alias, str):
            names.add(info.validation_alias.upper())
    return names


def real_settings() -> set[str]:
    classes: list[type[BaseSettings]] = [Settings, SlackSettings]
    for name in platforms.names():
        cls = platforms.platform_class(name)
        classes.append(cls.Settings)
    return set().union(*(env_names(c) for c in classes))


OURS = re.compile(r"\b(?:(?:MINISHIP|SLACK|WECHAT|ALIPAY)_[A-Z0-9_]*[A-Z0-9]|PORT|DATABASE_URL)\b")


def test_every_variable_deploy_names_is_a_setting_miniship_reads() -> None:
    """A typo in a variable's name is silently ignored by miniship (settings ignore what
    they do not know): so every MINISHIP_/SLACK_/WECHAT_/ALIPAY_ name in deploy/ and
    docs/deploy.md is checked against the settings classes. Names an apps file in deploy/
    refers to (``"env:NAME"``) are the operator's own, not settings, wherever named."""
    known = real_settings()
    assert {"MINISHIP_DATABASE_URL", "MINISHIP_OPS_PORT", "SLACK_BOT_TOKEN", "PORT"} <= known
    files = [p for p in DEPLOY.rglob("*") if p.is_file()] + [REPO / "docs" / "deploy.md"]
    texts = {path: path.read_text() for path in files}
    referred = {n for text in texts.values() for n in re.findall(r'"env:([A-Z0-9_]+)"', text)}
    seen: dict[str, set[str]] = {}
    for path, text in texts.items():
        for name in set(OURS.findall(text)) - referred:
            seen.setdefault(name, set()).add(path.name)
    unknown = {name: where for name, where in seen.items() if name not in known}
    assert not unknown, f"not settings miniship reads: {unknown}"
    assert len(seen) > 15  # the pattern finds what deploy/ names


# --------------------------------------------------------------------------- compose


def check_compose(*files: Path) -> subprocess.CompletedProcess[str]:
    """check-jsonschema with the Compose specification's JSON schema (it vendors it)."""
    schema = ["--builtin-schema", "vendor.compose-spec"]
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", *schema, *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_compose_files_follow_the_compose_specification() -> None:
    """Strictly: an unknown or misspelt key is an error."""
    done = check_compose(DEPLOY / "compose.yaml", DEPLOY / "compose.rehearsal.yaml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_schema_check_refuses_a_misspelt_key(tmp_path: Path) -> None:
    bad = tmp_path / "compose.yaml"
    bad.write_text((DEPLOY / "compose.yaml").read_text().replace("stop_grace_period", "stop_grace"))
    done = check_compose(bad)
    assert done.returncode == 1 and "'stop_grace' was unexpected" in done.stdout


def test_compose_runs_two_replicas_on_postgresql_after_one_migration() -> None:
    services = compose()["services"]
    postgres = services["postgres"]
    assert postgres["image"].split(":")[0].endswith("postgres")
    assert "pg_isready" in postgres["healthcheck"]["test"]
    migrate = services["migrate"]
    assert migrate["command"] == ["miniship", "migrate"] and migrate["restart"] == "no"
    assert migrate["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    replicas = {k: s for k, s in services.items() if s.get("command") == ["miniship", "serve"]}
    assert len(replicas) == 2, list(services)
    for name, replica in replicas.items():
        assert replica["depends_on"] == {
            "postgres": {"condition": "service_healthy"},
            "migrate": {"condition": "service_completed_successfully"},
        }, name
        assert replica["stop_signal"] == "SIGTERM"
        grace = seconds(replica["stop_grace_period"])
        assert grace > float(replica["environment"]["MINISHIP_STOP_SECONDS"]) >= 1, name
        assert replica["environment"]["MINISHIP_EMULATORS"] == "off"  # never its own platform
        assert replica["env_file"] == "miniship.env"
        assert replica["read_only"] is True and "ALL" in replica["cap_drop"]
        key_file = replica["environment"]["MINISHIP_SECRET_KEY_FILE"]
        assert key_file == f"/run/secrets/{replica['secrets'][0]}"
    declared = compose()["secrets"]
    for service in services.values():
        for secret in service.get("secrets", []):
            assert declared[secret]["file"].startswith("./secrets/")  # kept out of git


def test_no_secret_value_is_committed() -> None:
    """The example env file and the example Secret hold placeholders only; the real ones
    are ignored by git."""
    example = (DEPLOY / "miniship.env.example").read_text()
    values = dict(
        line.lstrip("# ").split("=", 1)
        for line in example.splitlines()
        if re.match(r"^#? ?[A-Z][A-Z0-9_]*=", line)
    )
    secret_like = {k: v for k, v in values.items() if re.search("TOKEN|SECRET|_KEY$|DATABASE", k)}
    assert secret_like and all("CHANGE-ME" in v for v in secret_like.values()), secret_like
    secret = manifests()["Secret", "miniship-secrets"]
    assert all("CHANGE-ME" in v for v in secret["stringData"].values())
    ignored = subprocess.run(
        ["git", "check-ignore", "deploy/miniship.env", "deploy/secrets/postgres_password"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert ignored.stdout.split() == ["deploy/miniship.env", "deploy/secrets/postgres_password"]


def test_the_rehearsal_apps_file_is_the_emulated_demo_app() -> None:
    """The emulators serve the repository's miniship.toml; the replicas of the rehearsal
    read deploy/rehearsal.toml: the same apps, or the replicas would ask for apps the
    emulators never registered."""
    emulated = tomllib.loads((REPO / "miniship.toml").read_text())["apps"]
    rehearsed = tomllib.loads((DEPLOY / "rehearsal.toml").read_text())["apps"]
    assert rehearsed.keys() == emulated.keys()
    for key, app in rehearsed.items():
        assert app["wechat"]["appid"] == emulated[key]["wechat"]["appid"]
        assert app["alipay"]["app_id"] == emulated[key]["alipay"]["app_id"]


@pytest.mark.xdist_group("processes")
def test_the_rehearsal_runs_through_the_separate_emulators(tmp_path: Path) -> None:
    """The rehearsal's emulators service, as its command line says (on loopback here),
    and a replica's start: the emulators' credentials sourced by its shell wrapper, then
    miniship — here the console in serve's place — releasing through them."""
    rehearsal = compose("compose.rehearsal.yaml")["services"]
    command = rehearsal["emulators"]["command"]
    assert command[:2] == ["miniship", "emulators"]
    port = free_port()
    args = dict(zip(command[2::2], command[3::2], strict=True))
    assert args["--host"] == "0.0.0.0" and args["--url"] == "http://emulators:8710"  # noqa: S104
    args.update({"--host": "127.0.0.1", "--port": str(port), "--url": f"http://localhost:{port}"})
    server = subprocess.Popen(
        [str(MINISHIP), "emulators", *[x for kv in args.items() for x in kv]],
        env=clean_env(MINISHIP_CONFIG=str(REPO / "miniship.toml")),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        env_file = tmp_path / args["--env-file"]
        first = server.stdout.readline() if server.stdout else ""
        assert first.strip() == f"emulators serving on http://localhost:{port}", (
            first + server.communicate(timeout=10)[1]
        )
        issued = read_env_file(env_file)
        assert issued["WECHAT_API_BASE"] == f"http://localhost:{port}/wechat"
        referred = set(re.findall(r'"env:([A-Z0-9_]+)"', (DEPLOY / "rehearsal.toml").read_text()))
        assert referred and referred <= issued.keys()

        wrapper = rehearsal["miniship-1"]["command"]
        assert wrapper[:2] == ["sh", "-c"] and wrapper[2].endswith("exec miniship serve")
        script = wrapper[2].replace("/run/emulators/emulators.env", shlex.quote(str(env_file)))
        script = script.replace("exec miniship serve", f"exec {shlex.quote(str(MINISHIP))} console")
        environment = (
            rehearsal["miniship-1"]["environment"]
            | compose()["services"]["miniship-1"]["environment"]
        )
        environment.pop("MINISHIP_SECRET_KEY_FILE")  # the test key instead (clean_env)
        environment["MINISHIP_QR_DIR"] = str(tmp_path / "qr")
        done = subprocess.run(
            ["sh", "-c", script],
            input="upload demo 1.0.0 the rehearsal\nsubmit demo 1.0.0\n",
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=120,
            env=clean_env(
                **environment,
                MINISHIP_CONFIG=str(DEPLOY / "rehearsal.toml"),
                DATABASE_URL=f"sqlite:///{tmp_path / 'replica.db'}",
            ),
        )
        assert done.returncode == 0, done.stderr
        assert "WeChat (live), Alipay (live)" in done.stdout
        assert done.stdout.count("✓") == 4, done.stdout  # upload and submit, both platforms
    finally:
        server.terminate()
        server.communicate(timeout=30)
    assert server.returncode == 0


# --------------------------------------------------------------------------- Kubernetes


def test_the_kubernetes_manifests_follow_kubernetes_schemas() -> None:
    """Strictly (an unknown or misspelt field is an error), against the oldest and the
    newest Kubernetes version kubernetes-validate knows."""
    objects = manifests()
    assert {kind for kind, _ in objects} == {
        "ConfigMap",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "Secret",
        "Job",
    }
    for version in (OLDEST_KUBERNETES, kubernetes_validate.latest_version()):
        for doc in objects.values():
            kubernetes_validate.validate(doc, version, strict=True)
    wrong = objects["Deployment", "miniship"] | {"spec": {"replica": 2}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(wrong, OLDEST_KUBERNETES, strict=True)


def pod(kind: str, name: str) -> dict[str, Any]:
    spec: dict[str, Any] = manifests()[kind, name]["spec"]["template"]["spec"]
    return spec


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_the_deployment_runs_two_probed_replicas_that_stop_gracefully() -> None:
    deployment = manifests()["Deployment", "miniship"]
    assert deployment["spec"]["replicas"] == 2
    spec = pod("Deployment", "miniship")
    [container] = spec["containers"]
    env = env_of(container)
    assert container["command"] == ["miniship", "serve"]
    assert env["MINISHIP_EMULATORS"] == "off"
    stop = float(env.get("MINISHIP_STOP_SECONDS", STOP_SECONDS))
    assert spec["terminationGracePeriodSeconds"] > stop
    # the probes ask routes miniship serves, on the port it listens on (PORT in HTTP mode)
    routes = {r.path for r in Ops.routes(Ops.__new__(Ops))}
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    probes = {
        k: container[k]["httpGet"] for k in ("startupProbe", "livenessProbe", "readinessProbe")
    }
    assert probes["livenessProbe"]["path"] == "/healthz"
    assert probes["readinessProbe"]["path"] == "/readyz"
    for probe in probes.values():
        assert probe["path"] in routes
        assert ports[probe["port"]] == int(env["PORT"])
    service = manifests()["Service", "miniship"]
    assert all(p["targetPort"] in ports for p in service["spec"]["ports"])
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert container["resources"]["requests"]["cpu"] and container["resources"]["requests"]


def test_the_pods_run_unprivileged_on_a_read_only_root() -> None:
    image_user = instruction("USER")[-1].split(":")[0]
    for kind, name in (("Deployment", "miniship"), ("Job", "miniship-migrate")):
        spec = pod(kind, name)
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert str(spec["securityContext"]["runAsUser"]) == image_user
        assert spec["automountServiceAccountToken"] is False
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"]["drop"] == ["ALL"]
            assert container["resources"]["requests"]


def test_every_secret_the_pods_read_is_in_the_secret() -> None:
    secret = manifests()["Secret", "miniship-secrets"]
    keys = set(secret["stringData"])
    for kind, name in (("Deployment", "miniship"), ("Job", "miniship-migrate")):
        for container in pod(kind, name)["containers"]:
            for var, source in env_of(container).items():
                if isinstance(source, dict):
                    ref = source["secretKeyRef"]
                    assert ref["name"] == "miniship-secrets" and ref["key"] in keys, var
                    assert ref["key"] == var
    used = {
        e["name"] for e in pod("Deployment", "miniship")["containers"][0]["env"] if "valueFrom" in e
    }
    assert used == keys  # nothing in the Secret that no pod reads


def test_the_migration_job_runs_miniship_migrate_once() -> None:
    job = manifests()["Job", "miniship-migrate"]
    [container] = job["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["miniship", "migrate"]
    assert "MINISHIP_DATABASE_URL" in env_of(container)
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "OnFailure"


def test_the_example_apps_file_in_the_configmap_loads(tmp_path: Path) -> None:
    config_map = manifests()["ConfigMap", "miniship-config"]
    mount = next(
        m
        for m in pod("Deployment", "miniship")["containers"][0]["volumeMounts"]
        if m["name"] == "config"
    )
    path = Path(mount["mountPath"]) / "miniship.toml"
    assert str(path) == env_of(pod("Deployment", "miniship")["containers"][0])["MINISHIP_CONFIG"]
    (tmp_path / "miniship.toml").write_text(config_map["data"]["miniship.toml"])
    config = load_config(tmp_path / "miniship.toml")
    assert list(config.apps) == ["shop"]


# --------------------------------------------------------------------------- systemd


def unit() -> dict[str, list[str]]:
    """The unit's settings, each key with every value it is given."""
    out: dict[str, list[str]] = {}
    for line in (DEPLOY / "miniship.service").read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            out.setdefault(key.strip(), []).append(value.strip())
    return out


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_the_systemd_unit_verifies(tmp_path: Path) -> None:
    """systemd-analyze verify (every key known, every value parsed, the commands there:
    here the test environment's own miniship stands in for /opt/miniship's), and its
    offline security assessment."""
    text = (DEPLOY / "miniship.service").read_text()
    assert "/opt/miniship/bin/miniship" in text
    local = tmp_path / "miniship.service"
    local.write_text(text.replace("/opt/miniship/bin/miniship", str(MINISHIP)))
    done = subprocess.run(
        ["systemd-analyze", "verify", str(local)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr
    security = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", str(local)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    found = re.search(r"Overall exposure level for miniship.service: ([\d.]+)", security.stdout)
    assert found and float(found.group(1)) <= 2.0, security.stdout[-2000:]
    # and verify does catch a mistake
    local.write_text(local.read_text().replace("KillSignal=SIGTERM", "KillSignal=SIGTREM"))
    done = subprocess.run(
        ["systemd-analyze", "verify", str(local)], capture_output=True, text=True, timeout=60
    )
    assert "SIGTREM" in done.stderr


def test_the_systemd_unit_stops_gracefully_and_migrates_first() -> None:
    settings = unit()
    assert settings["Type"] == ["exec"]  # miniship does not speak sd_notify
    assert settings["ExecStartPre"] == ["/opt/miniship/bin/miniship migrate"]
    assert settings["ExecStart"] == ["/opt/miniship/bin/miniship serve"]
    assert settings["KillSignal"] == ["SIGTERM"]
    env = dict(v.split("=", 1) for v in settings["Environment"])
    stop = float(env.get("MINISHIP_STOP_SECONDS", STOP_SECONDS))
    assert float(settings["TimeoutStopSec"][0]) > stop
    assert env["MINISHIP_EMULATORS"] == "off"
    for hardening in ("NoNewPrivileges", "DynamicUser", "PrivateTmp"):
        assert settings[hardening] == ["yes"], hardening
    assert settings["ProtectSystem"] == ["strict"]
    assert settings["WorkingDirectory"] == [f"/var/lib/{settings['StateDirectory'][0]}"]
    # a dynamic user has no home, and Slack's SDK asks Python for one at import
    assert env["HOME"] == settings["WorkingDirectory"][0]


SYSTEMD_IMAGE = "localhost/miniship-systemd:rehearsal"  # deploy/systemd-rehearsal/run.sh


def systemd_image_here() -> bool:
    """Rootful podman with the rehearsal's image built: never so in CI."""
    if shutil.which("podman") is None or os.geteuid() != 0:
        return False
    exists = ["podman", "image", "exists", SYSTEMD_IMAGE]
    return subprocess.run(exists, capture_output=True, timeout=60).returncode == 0


@pytest.mark.skipif(not systemd_image_here(), reason=f"no podman image {SYSTEMD_IMAGE}")
def test_systemd_runs_the_unit_in_a_container() -> None:
    """The unit run by systemd as PID 1 (podman --systemd=always): enable --now, the
    migration first, the probes, JSON in the journal, the sandbox, a graceful stop,
    a restart, systemd-analyze security. run.sh does each check and says which failed."""
    env = {**os.environ, "NAME": f"miniship-systemd-test-{os.getpid()}"}
    done = subprocess.run(
        ["sh", str(DEPLOY / "systemd-rehearsal" / "run.sh"), "--no-build"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "FAILED" not in done.stdout and done.stdout.rstrip().endswith("all checks passed")


def test_the_kubernetes_rehearsal_script_parses() -> None:
    """deploy/kubernetes-rehearsal/run.sh builds a cluster as root in ~15 minutes, so the
    suite does not run it (docs/deploy.md says what it found); bash reads it at least."""
    script = DEPLOY / "kubernetes-rehearsal" / "run.sh"
    done = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


# --------------------------------------------------------------------------- the image


def test_the_dockerfile_installs_the_lock_and_runs_unprivileged() -> None:
    runs = " ".join(instruction("RUN"))
    assert "--require-hashes" in runs and "requirements.lock" in runs
    assert re.search(r"pip install --no-deps /src", runs)
    assert instruction("USER") == ["10001:10001"]
    assert instruction("STOPSIGNAL") == ["SIGTERM"]
    assert json.loads(instruction("CMD")[-1]) == ["miniship", "serve"]
    assert all("slim" in line for line in instruction("ARG") if "PYTHON_IMAGE=" in line)
    # what it copies is what pyproject.toml packages
    copied = " ".join(instruction("COPY"))
    for package in ("handlers", "platforms", "storage", "bot.py", "requirements.lock"):
        assert package in copied
    ignored = (REPO / ".dockerignore").read_text().split()
    assert ".venv" in ignored and ".git" in ignored


def healthcheck() -> list[str]:
    [line] = instruction("HEALTHCHECK")
    command: list[str] = json.loads(line[line.index("CMD ") + 4 :])
    assert command[0] == "python"
    return [sys.executable, *command[1:]]


@pytest.fixture
def console_with_ops_port(tmp_path: Path) -> Iterator[int]:
    """A console (emulated platforms) serving /healthz on MINISHIP_OPS_PORT."""
    port = free_port()
    env = clean_env(MINISHIP_CONFIG=str(REPO / "miniship.toml"), MINISHIP_OPS_PORT=str(port))
    env.pop("MINISHIP_SECRET_KEY")
    console, _ = running_console(tmp_path, env)
    try:
        assert console.stderr is not None
        said = ""
        while "health and metrics on port" not in said:  # the ops port is open
            line = console.stderr.readline()
            assert line, said
            said += line
        yield port
    finally:
        console.communicate("quit\n", timeout=60)


@pytest.mark.xdist_group("processes")
def test_the_image_healthcheck_asks_a_running_miniship(console_with_ops_port: int) -> None:
    """The HEALTHCHECK's own command: healthy against a running miniship's ops port
    (Socket Mode, the console), and against PORT when no ops port is set (HTTP mode);
    unhealthy where nothing answers."""
    check = healthcheck()
    env = clean_env(MINISHIP_OPS_PORT=str(console_with_ops_port))
    done = subprocess.run(check, env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert subprocess.run(check, env=clean_env(PORT=str(console_with_ops_port))).returncode == 0
    nothing = clean_env(MINISHIP_OPS_PORT=str(free_port()))
    failed = subprocess.run(check, env=nothing, capture_output=True, text=True, timeout=30)
    assert failed.returncode == 1 and "Connection refused" in failed.stderr


@pytest.mark.xdist_group("processes")
def test_the_commands_deploy_runs_exist(tmp_path: Path) -> None:
    """The image's CMD (`miniship serve`) and the migration (`miniship migrate`), as the
    installed command runs them: serve says what it lacks, migrate migrates."""
    serve = json.loads(instruction("CMD")[-1])
    done = subprocess.run(
        [str(MINISHIP), *serve[1:]],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        env=clean_env(),
    )
    assert done.returncode == 2 and "SLACK_BOT_TOKEN is not set" in done.stderr
    migrate = compose()["services"]["migrate"]["command"]
    done = subprocess.run(
        [str(MINISHIP), *migrate[1:]],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        env=clean_env(MINISHIP_DATABASE_URL=f"sqlite:///{tmp_path / 'm.db'}"),
    )
    assert done.returncode == 0 and "migrated from empty to" in done.stdout, done.stderr
