"""Starts, watches and stops the mesh's processes on this machine.

``python deploy/local/mesh.py run`` starts intake, router, notifier, oversight and the reference
district client, waits until each answers ``/healthz``, seeds a small demo, prints what is where
and stays until Ctrl-C, then stops them all. The test suite uses :class:`Mesh` the same way, with
its own ports and environment, and kills and restarts single services in its fault tests.
"""

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PID_FILE = ROOT / ".local" / "mesh.pid"  # the running `make run`'s
PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In the child: ask Linux for SIGTERM when the process that started us dies, so a killed test
    run or `make run` never leaves services holding their ports."""
    import ctypes

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
SERVICES = {"intake": 8001, "router": 8002, "oversight": 8003, "notifier": 8004}


def _behind_nice() -> int:
    value = os.environ.get("MESH_BEHIND_NICE", "19")
    if not value.isdigit() or int(value) > 19:
        raise SystemExit(f"MESH_BEHIND_NICE={value!r}: a nice value from 0 to 19 is wanted")
    return int(value)


# On one host the services share its cores. The notifier and oversight work behind the path a
# citizen waits on (intake → router → AssignmentIssued): when the host is short of CPU they fall
# behind and catch up once the load falls, rather than slow every new case. So they run at the
# lowest priority, nice 19 (MESH_BEHIND_NICE): at nice 5 they still took enough of two saturated
# cores to put the p99 to AssignmentIssued at 140-313 ms, against 90-170 ms (BENCHMARKS.md, 2026-12-06).
NICE = dict.fromkeys(("notifier", "oversight"), _behind_nice())


class Mesh:
    """The four services (and optionally the district client) as real processes."""

    def __init__(self, env: dict[str, str], log_dir: Path, ports: dict[str, int] | None = None,
                 district_port: int | None = 8005, gateways_port: int | None = None):
        self.ports = ports or dict(SERVICES)
        self.district_port = district_port
        self.env = {**os.environ, **env, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
        self.env.pop("OTEL_SERVICE_NAME", None)  # each service names itself; one shared name would blur them
        for name, port in self.ports.items():
            self.env[f"{name.upper()}_PORT"] = str(port)
        if district_port:
            self.env["NOTIFIER_UNIT_WEBHOOK_URL"] = f"http://127.0.0.1:{district_port}/units/{{unit_id}}/assignments"
            self.env["DISTRICT_PORT"] = str(district_port)
        self.gateways_port = gateways_port
        if gateways_port:
            for channel in ("sms", "push", "zalo"):
                self.env[f"NOTIFIER_{channel.upper()}_{'API' if channel == 'zalo' else 'GATEWAY'}_URL"] = \
                    f"http://127.0.0.1:{gateways_port}/{channel}"
            self.env["GATEWAYS_PORT"] = str(gateways_port)
            # Handlers' e-mail goes to the stand-ins' mail server, 19 ports above them (8025 in the demo).
            self.env["GATEWAYS_SMTP_PORT"] = self.env["NOTIFIER_SMTP_PORT"] = str(gateways_port + 19)
            self.env["NOTIFIER_SMTP_HOST"] = "127.0.0.1"
            if "intake" in self.ports:
                self._zalo_through_intake(f"http://127.0.0.1:{gateways_port}", self.ports["intake"])
        if "oversight" in self.ports:
            self.env.setdefault("INTAKE_OVERSIGHT_URL", f"http://127.0.0.1:{self.ports['oversight']}")
        if "intake" in self.ports:
            self.env.setdefault("INTAKE_PUBLIC_URL", f"http://127.0.0.1:{self.ports['intake']}")
        self.log_dir = log_dir
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.procs: dict[str, subprocess.Popen] = {}

    def _zalo_through_intake(self, gateways: str, intake_port: int) -> None:
        """Zalo as deployed: intake keeps the OA token fresh against the stand-ins' OAuth server, from
        a refresh token made here, and the notifier borrows it from intake."""
        made = {"INTAKE_ZALO_APP_ID": str(secrets.randbelow(10**15)),
                "INTAKE_ZALO_OA_SECRET_KEY": secrets.token_urlsafe(24),
                "INTAKE_ZALO_APP_SECRET": secrets.token_urlsafe(24),
                "INTAKE_ZALO_REFRESH_TOKEN": secrets.token_urlsafe(24),
                "INTAKE_ZALO_TOKEN_READER_KEY": secrets.token_urlsafe(24)}
        for name, value in made.items():
            self.env.setdefault(name, value)
        self.env.update({
            "GATEWAYS_ZALO_APP_SECRET": self.env["INTAKE_ZALO_APP_SECRET"],
            "INTAKE_ZALO_OAUTH_URL": f"{gateways}/zalo/oauth", "INTAKE_ZALO_API_URL": gateways,
            "NOTIFIER_ZALO_TOKEN_URL": f"http://127.0.0.1:{intake_port}/internal/zalo/access-token",
            "NOTIFIER_ZALO_TOKEN_KEY": self.env["INTAKE_ZALO_TOKEN_READER_KEY"]})

    def url(self, name: str) -> str:
        port = {"district": self.district_port, "gateways": self.gateways_port}.get(name) or self.ports[name]
        return f"http://127.0.0.1:{port}"

    def start(self, name: str) -> None:
        module = {"district": "examples.district_client", "gateways": "examples.gateways"}.get(name, f"services.{name}")
        args = [sys.executable, "-m", module] + (["serve"] if name == "router" else [])
        log = open(self.log_dir / f"{name}.log", "ab")
        nice = NICE.get(name, 0)

        def in_child() -> None:
            die_with_parent()
            if nice:
                os.nice(nice)
                # Each service is a session of its own, and Linux shares the cores between sessions
                # first (autogroup), where a plain nice ranks nothing: the session's is set too.
                with contextlib.suppress(OSError):
                    Path("/proc/self/autogroup").write_text(str(nice))

        self.procs[name] = subprocess.Popen(args, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True, preexec_fn=in_child)

    def start_all(self, timeout: float = 90) -> None:
        # The gateways' stand-ins first: they are the outside world (Zalo's OAuth among it), there before us.
        names = ((["gateways"] if self.gateways_port else []) + list(self.ports)
                 + (["district"] if self.district_port else []))
        for name in names:
            self.start(name)
        for name in names:
            self.wait_healthy(name, timeout)

    def wait_healthy(self, name: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            proc = self.procs.get(name)
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}; see {self.log_dir / (name + '.log')}")
            try:
                with urllib.request.urlopen(self.url(name) + "/healthz", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise TimeoutError(f"{name} not healthy after {timeout}s; see {self.log_dir / (name + '.log')}")

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs.pop(name)
        os.killpg(proc.pid, sig)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            # Asked to stop and did not: where its tasks wait goes to its log, then it is killed.
            os.killpg(proc.pid, signal.SIGUSR2)
            time.sleep(1)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
            raise RuntimeError(f"{name} did not stop within 30 s of signal {sig}; where its tasks waited is at"
                               f" the end of {self.log_dir / (name + '.log')}") from None

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for name, proc in list(self.procs.items()):
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        self.procs.clear()


async def park_group_at_end(bootstrap: str, group_id: str, *topics: str) -> None:
    """Commit a consumer group's position at the end of each topic, so a service started fresh in
    that group skips the topics' history (benchmarks and test meshes on a shared broker)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group_id, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()  # noqa: SLF001 - no subscription to fetch it for us
        partitions = [TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or ()]
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        await consumer.commit({tp: await consumer.position(tp) for tp in partitions})
    finally:
        await consumer.stop()


def post_json(url: str, body: dict, headers: dict[str, str] | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="POST",
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


DEMO = [
    ("Nguyễn Thị Hoa", "0903123456", "45 Lê Văn Sỹ, Phường 13, Quận Phú Nhuận, TP.HCM", "essential_supplies",
     "Gia đình 5 người đang cách ly, hết gạo và thực phẩm."),
    ("Trần Văn Nam", "0912345678", "45 Lê Văn Sỹ, P.13, Q.3, TPHCM", "covid_support",
     "Lao động tự do mất việc, chưa nhận được tiền hỗ trợ gói 2."),
    ("Lê Thị Mai", "0987654321", "P. Thảo Điền, Q.2, Hồ Chí Minh", "vulnerable_person",
     "Cụ bà 82 tuổi sống một mình, cần người hỗ trợ."),
    ("Phạm Minh Tuấn", "0934567890", "88 Phan Văn Trị, Phường 10, Gò Vấp", "lighting",
     "Đèn đường hỏng cả dãy, buổi tối rất tối."),
    ("Võ Thị Lan", "0978123123", "Phường 1", "essential_supplies", "Cần hỗ trợ thực phẩm gấp."),
]


def seed_demo(mesh: Mesh) -> list[dict]:
    """Post the demo's requests (the same keys every time, so a second run adds nothing)."""
    out = []
    for i, (name, phone, address, category, text) in enumerate(DEMO):
        status, body = post_json(mesh.url("intake") + "/v1/channels/web/requests",
                                 {"full_name": name, "phone": phone, "address": address, "category": category,
                                  "description": text, "is_public": i % 2 == 0},
                                 {"Idempotency-Key": f"demo-{i}"})
        out.append({"status": status, **body})
    return out


def _new_secrets() -> dict[str, str]:
    made = {f"OVERSIGHT_TOKEN_{r}": secrets.token_urlsafe(24) for r in ("COUNCIL", "FRONT", "CENTRE")}
    made.update({
        "OVERSIGHT_AUDIT_KEY": secrets.token_urlsafe(32), "INTAKE_TRACKING_CODE_KEY": secrets.token_urlsafe(32),
        "INTAKE_ZALO_APP_ID": str(secrets.randbelow(10**15)), "INTAKE_ZALO_OA_SECRET_KEY": secrets.token_urlsafe(24),
        "INTAKE_APP_JWT_ALGORITHM": "HS256", "INTAKE_APP_JWT_KEY": secrets.token_urlsafe(32),
        "INTAKE_PHONE_OPERATOR_TOKENS": json.dumps({"op-001": secrets.token_urlsafe(24)}, separators=(",", ":")),
        "INTAKE_OPEN311_API_KEYS": json.dumps([secrets.token_urlsafe(16)]),
        # The notifier signs each unit's webhooks with that unit's key, derived from this one; the demo's
        # district client, standing in for every unit, derives each the same way to check them.
        "NOTIFIER_WEBHOOK_SIGNING_KEY": secrets.token_urlsafe(32),
    })
    return made


def secrets_env(path: Path) -> dict[str, str]:
    """This machine's secrets, made once and kept out of the repository: oversight tokens and audit
    key, the tracking codes' key, the Zalo OA app id and secret, the app's token key, an operator's
    token and an Open311 key.
    A secret added in a later version is made and appended; the ones there are kept."""
    path.parent.mkdir(parents=True, exist_ok=True)
    kept = dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line) if path.exists() else {}
    missing = {k: v for k, v in _new_secrets().items() if k not in kept}
    if missing:
        # Made readable by its owner alone before a secret is in it (a file made under the umask was
        # readable by every user of the machine until its chmod); an older file is made so too.
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "a") as f:
            os.fchmod(f.fileno(), 0o600)
            f.write("".join(f"{k}={v}\n" for k, v in missing.items()))
    elif path.exists():
        path.chmod(0o600)
    return {**kept, **missing}


def run() -> None:
    local = ROOT / ".local"
    env = secrets_env(local / "secrets.env")
    # Each service's port as its own settings take it (<PREFIX>PORT), for a machine where one is taken.
    ports = {name: int(os.environ.get(f"{name.upper()}_PORT") or port) for name, port in SERVICES.items()}
    mesh = Mesh(env, local / "logs", ports=ports, gateways_port=8006)
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    PID_FILE.write_text(str(os.getpid()))
    try:
        mesh.start_all()
        seeded = seed_demo(mesh)
        print("\nThe 1022 mesh is up (Ctrl-C or `make down` stops it):")
        print(f"  intake      {mesh.url('intake')}   web form: {mesh.url('intake')}/  API: POST /v1/channels/web/requests")
        print(f"  router      {mesh.url('router')}   /healthz /metrics")
        print(f"  oversight   {mesh.url('oversight')}   dashboard: {mesh.url('oversight')}/  API: /v1/cases ...")
        print(f"  notifier    {mesh.url('notifier')}   /healthz /metrics")
        print(f"  district    {mesh.url('district')}   reference district client (answers its assignments)")
        print(f"  gateways    {mesh.url('gateways')}   SMS / push / Zalo stand-ins, mail server on"
              f" 127.0.0.1:{mesh.env['GATEWAYS_SMTP_PORT']}: GET /messages")
        print(f"  oversight tokens: {local / 'secrets.env'}   logs: {local / 'logs'}")
        print(f"  demo requests (public status: {mesh.url('oversight')}/v1/public/requests/<code>):")
        for s in seeded:
            print(f"    {s.get('status')} {s.get('tracking_code', s)}")
        while not stopping:
            for name, proc in mesh.procs.items():
                if proc.poll() is not None:
                    print(f"{name} exited ({proc.returncode}); see {local / 'logs' / (name + '.log')}", file=sys.stderr)
                    stopping = True
            time.sleep(0.5)
    finally:
        print("stopping the services ...")
        mesh.stop_all()
        PID_FILE.unlink(missing_ok=True)


def _our_pid() -> int | None:
    """The pid of the mesh ``make run`` started here, if it is running; a file left by one that died
    (its number perhaps given to another process since) is removed."""
    try:
        pid = int(PID_FILE.read_text())
        if b"mesh.py" in Path(f"/proc/{pid}/cmdline").read_bytes():
            return pid
    except (OSError, ValueError):
        pass
    PID_FILE.unlink(missing_ok=True)
    return None


def running() -> None:
    """Exit 0, naming it, if a mesh started by ``make run`` is running here; else 1."""
    pid = _our_pid()
    if pid is None:
        sys.exit(1)
    print(f"a mesh is already running here (pid {pid}); `make down` stops it", file=sys.stderr)


def stop_running() -> None:
    pid = _our_pid()
    if pid is None:
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        PID_FILE.unlink(missing_ok=True)
        return
    for _ in range(100):
        if not PID_FILE.exists():
            return
        time.sleep(0.3)


if __name__ == "__main__":
    {"run": run, "stop": stop_running, "running": running}[sys.argv[1] if len(sys.argv) > 1 else "run"]()
