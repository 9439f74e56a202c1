"""End to end: `python -m devhost.stack` (what `make run` execs) as a real supervisor process.

Each test runs the supervisor in a temporary root on free ports, reads its banner like a
developer would, and checks the promises of `make run`: the index answers with the local
reader token, SIGTERM stops every child and frees every port, a second start reuses the data
and the tokens, and a port already in use is one clear line and exit status 2. Also: the
`.local/stack.json` contract with the CLI (and how a killed supervisor's file reads as stale),
settings in the environment winning over local.settings.json except the endpoints, and each
child brought back after a kill -9 with the packages and tokens intact.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient

from devhost.stack import PUBLISHER, READER, Ports, Stack
from devhost.stack.state import read_live_state
from devhost.standins.azurite import API_VERSION, connection_string
from devhost.standins.entra.principals import read_directory
from devhost.standins.keyvault.credential import LocalVaultCredential
from devhost.wheels import build_wheel
from shared.adapters.secretstore import SecretStore
from shared.core import layout
from shared.services.tokens import Tokens
from tests.support import clients

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[2]
LOOPBACK = "127.0.0.1"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
PUBLISH_TIMEOUT = 30.0
BANNER_END = "Ctrl-C to stop."
INDEX_LINE = re.compile(r"^\s+index\s+(?P<url>http://\S+/simple/)$", re.M)
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class Supervisor:
    """One `python -m devhost.stack` process and where its output goes."""

    process: subprocess.Popen[bytes]
    root: Path
    ports: Ports
    out: Path
    err: Path

    def stdout(self) -> str:
        return self.out.read_text(errors="replace")

    def stderr(self) -> str:
        return self.err.read_text(errors="replace")

    def pids(self) -> dict[str, int]:
        pids: dict[str, int] = json.loads((self.root / ".local" / "stack.pids").read_text())
        return pids

    def index_url(self) -> str:
        found = INDEX_LINE.search(self.stdout())
        assert found is not None, self.stdout()
        return found["url"]

    def host_log(self) -> str:
        return (self.root / ".local" / "logs" / "host.log").read_text(errors="replace")

    @property
    def public_url(self) -> str:
        return f"http://{LOOPBACK}:{self.ports.host}"

    def blob_service(self) -> BlobServiceClient:
        return BlobServiceClient.from_connection_string(
            connection_string(LOOPBACK, self.ports.blob), api_version=API_VERSION
        )

    def tokens(self) -> Tokens:
        """The tokens as the vault itself holds them, not as the banner says."""
        from azure.keyvault.secrets import SecretClient

        client = SecretClient(
            f"https://{LOOPBACK}:{self.ports.vault}",
            LocalVaultCredential(),
            verify_challenge_resource=False,
            connection_verify=str(self.root / ".local" / "keyvault" / "tls" / "ca-cert.pem"),
        )
        return Tokens(SecretStore(client), public_url=self.public_url)


class Supervisors:
    """Starts supervisors, and makes sure none outlives its test whatever the outcome."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.started: list[Supervisor] = []

    def launch(self, root: Path, ports: Ports, env: dict[str, str] | None = None) -> Supervisor:
        run = len(self.started)
        out, err = self.base / f"stack-{run}.out", self.base / f"stack-{run}.err"
        with out.open("wb") as stdout, err.open("wb") as stderr:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "devhost.stack",
                    "--root",
                    str(root),
                    "--blob-port",
                    str(ports.blob),
                    "--vault-port",
                    str(ports.vault),
                    "--host-port",
                    str(ports.host),
                    "--entra-port",
                    str(ports.entra),
                ],
                cwd=REPO_ROOT,
                stdout=stdout,
                stderr=stderr,
                stdin=subprocess.DEVNULL,
                env=env,
            )
        supervisor = Supervisor(process, root, ports, out, err)
        self.started.append(supervisor)
        return supervisor

    def start(
        self, root: Path, ports: Ports, env: dict[str, str] | None = None
    ) -> tuple[Supervisor, float]:
        """Launch and wait for the banner; returns the supervisor and seconds to the banner."""
        began = time.monotonic()
        supervisor = self.launch(root, ports, env)
        deadline = began + START_TIMEOUT
        while BANNER_END not in supervisor.stdout():
            code = supervisor.process.poll()
            assert code is None, f"exited {code} before the banner:\n{supervisor.stderr()}"
            assert time.monotonic() < deadline, f"no banner in time:\n{supervisor.stderr()}"
            time.sleep(0.05)
        return supervisor, time.monotonic() - began

    def close(self) -> None:
        for supervisor in self.started:
            if supervisor.process.poll() is None:
                supervisor.process.send_signal(signal.SIGTERM)
                try:
                    supervisor.process.wait(STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    supervisor.process.kill()  # its children get SIGTERM from the kernel
                    supervisor.process.wait(STOP_TIMEOUT)


@pytest.fixture
def supervisors(tmp_path: Path) -> Iterator[Supervisors]:
    started = Supervisors(tmp_path)
    try:
        yield started
    finally:
        started.close()


def free_ports() -> Ports:
    """Four distinct free ports (each socket stays bound until all four are picked)."""
    sockets = [socket.socket() for _ in range(4)]
    try:
        for sock in sockets:
            sock.bind((LOOPBACK, 0))
        blob, vault, host, entra = (int(sock.getsockname()[1]) for sock in sockets)
    finally:
        for sock in sockets:
            sock.close()
    return Ports(blob=blob, vault=vault, host=host, entra=entra)


def every_port(ports: Ports) -> list[int]:
    return list(dataclasses.astuple(ports))


def entra_token(root: Path, role: str = "read") -> str:
    """An access token from the stack's Entra ID stand-in, as `wheelvault entra token` prints."""
    command = [sys.executable, "-m", "devhost.cli", "--root", str(root), "entra", "token"]
    done = subprocess.run(
        [*command, "--role", role], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def get(url: str, user: str = "", token: str = "") -> tuple[int, bytes]:
    request = urllib.request.Request(url)
    if token:
        raw = base64.b64encode(f"{user}:{token}".encode()).decode()
        request.add_header("Authorization", f"Basic {raw}")
    try:
        with DIRECT.open(request, timeout=10) as reply:
            return int(reply.status), bytes(reply.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, bytes(error.read())


def get_index(index_url: str) -> int:
    """GET the index URL as pip would: the credentials in it become HTTP Basic auth."""
    found = re.fullmatch(r"http://(?P<user>[^:]+):(?P<token>[^@]+)@(?P<rest>.+)", index_url)
    assert found is not None, index_url
    status, _ = get(f"http://{found['rest']}", found["user"], found["token"])
    return status


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((LOOPBACK, port)) == 0


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def processes_mentioning(root: Path) -> list[str]:
    """Command lines of running processes that name `root` (every child of the stack does)."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(root) in command and entry.name != str(os.getpid()):
            found.append(command)
    return found


def stop_and_check(supervisor: Supervisor) -> None:
    """SIGTERM as `kill` or Ctrl-C would; everything must be gone afterwards."""
    pids = supervisor.pids()
    assert set(pids) == {"supervisor", "azurite", "keyvault", "entra", "host"}
    began = time.monotonic()
    supervisor.process.send_signal(signal.SIGTERM)
    assert supervisor.process.wait(STOP_TIMEOUT) == 0, supervisor.stderr()
    print(f"stopped {time.monotonic() - began:.1f} s after SIGTERM")
    # A warning means a child did not exit 0 after SIGTERM: Azurite killed before it saved.
    assert supervisor.stderr().strip().splitlines()[-1:] == ["devhost.stack: stopped"]
    assert "warning" not in supervisor.stderr()
    assert "Traceback" not in supervisor.stderr()
    left = {name: pid for name, pid in pids.items() if alive(pid)}
    assert left == {}, f"still running: {left}"
    assert processes_mentioning(supervisor.root) == []
    assert [p for p in every_port(supervisor.ports) if listening(p)] == []
    assert not (supervisor.root / ".local" / "stack.pids").exists()
    assert not (supervisor.root / ".local" / "stack.json").exists()


def check_running(supervisor: Supervisor) -> dict[str, str]:
    """Health, the index with the reader token, and both tokens in the vault; their values."""
    status, body = get(f"{supervisor.public_url}/health")
    assert status == 200, body
    assert json.loads(body)["status"] == "ok"
    assert get_index(supervisor.index_url()) == 200
    values: dict[str, str] = {}
    tokens = supervisor.tokens()
    with tokens.store.client:
        for name, scope in ((READER, "read"), (PUBLISHER, "publish")):
            assert tokens.info(name).scope == scope
            values[name] = tokens.show(name)
    assert f"{READER}:{values[READER]}@" in supervisor.index_url()
    return values


def test_stops_cleanly_and_restarts_with_the_same_data_packages_and_tokens(
    supervisors: Supervisors, tmp_path: Path
) -> None:
    """One stack over a stop and a start (each start and stop costs seconds): stack.json while
    it runs, a rival refused, a published wheel installing before and after the restart, and
    the same tokens, blobs and index URL afterwards. Publishing needs the host's blob watcher
    (the publish_upload blob trigger run by the local host)."""
    root, ports = tmp_path / "root", free_ports()
    first, seconds = supervisors.start(root, ports)
    print(f"first start (new data): banner after {seconds:.1f} s")
    tokens = check_running(first)
    assert (root / "local.settings.json").exists()
    check_stack_json(first, root, ports)
    with first.blob_service() as service:
        service.create_container("stack-test")
        service.get_blob_client("stack-test", "kept.txt").upload_blob(b"still here")
        assert {c.name for c in service.list_containers()} >= set(layout.CONTAINERS)
    publish(first, "stack-demo", "1.0")
    home = tmp_path / "home"
    assert_installs(first.index_url(), tmp_path / "venv-1", home)
    # A second stack on the same data (other ports) would corrupt it: refused, exit 2.
    rival = supervisors.launch(root, free_ports())
    assert rival.process.wait(START_TIMEOUT) == 2
    assert "already running" in rival.stderr()
    assert "Traceback" not in rival.stderr()
    stop_and_check(first)  # which checks stack.json is gone

    second, seconds = supervisors.start(root, ports)
    print(f"second start (same data): banner after {seconds:.1f} s")
    assert check_running(second) == tokens
    assert second.index_url() == first.index_url()
    with second.blob_service() as service:
        kept = service.get_blob_client("stack-test", "kept.txt").download_blob().readall()
    assert kept == b"still here"
    assert_installs(second.index_url(), tmp_path / "venv-2", home)
    stop_and_check(second)


def assert_installs(index_url: str, venv: Path, home: Path, project: str = "stack-demo") -> None:
    python = clients.new_venv(venv, home)
    done = clients.pip(python, home, "install", "--index-url", index_url, f"{project}==1.0")
    assert done.returncode == 0, done.output
    assert clients.installed_version(python, project, home) == "1.0"


def test_stack_class_on_free_ports(tmp_path: Path) -> None:
    """The in-process API tests can use: port 0 everywhere, URLs and both token values."""
    with Stack(tmp_path / "root", ports=Ports(blob=0, vault=0, host=0, entra=0)) as stack:
        ports = stack.ports
        assert 0 not in every_port(ports)
        assert stack.reader_token is not None
        assert stack.publisher_token is not None
        assert stack.index_url == (
            f"http://{READER}:{stack.reader_token}@{LOOPBACK}:{ports.host}/simple/"
        )
        assert get_index(stack.index_url) == 200
        assert get(f"{stack.public_url}/health")[0] == 200
        pids = stack.pids
    assert [name for name, pid in pids.items() if alive(pid)] == []
    assert [p for p in every_port(ports) if listening(p)] == []


@pytest.mark.parametrize("role", ["blob", "vault", "host", "entra"])
def test_a_port_in_use_is_one_clear_line_and_exit_2(
    supervisors: Supervisors, tmp_path: Path, role: str
) -> None:
    ports = free_ports()
    port = getattr(ports, role)
    with socket.socket() as taken:
        taken.bind((LOOPBACK, port))
        taken.listen()
        supervisor = supervisors.launch(tmp_path / "root", ports)
        assert supervisor.process.wait(START_TIMEOUT) == 2
    lines = supervisor.stderr().strip().splitlines()
    assert len(lines) == 1, lines
    assert f"port {port} " in lines[0]
    assert f"--{role}-port" in lines[0]
    assert "Traceback" not in supervisor.stderr()
    assert processes_mentioning(tmp_path / "root") == []
    assert not (tmp_path / "root" / ".local" / "stack.pids").exists()
    others = [p for p in every_port(ports) if p != port]
    assert [p for p in others if listening(p)] == []


def state_of(supervisor: Supervisor) -> dict[str, Any]:
    state: dict[str, Any] = json.loads((supervisor.root / ".local" / "stack.json").read_text())
    return state


def check_stack_json(supervisor: Supervisor, root: Path, ports: Ports) -> None:
    """The contract with the `wheelvault` command: enough to reach every service, no token."""
    state = state_of(supervisor)
    assert state["version"] == 1
    assert state["pid"] == supervisor.process.pid
    assert state["root"] == str(root.resolve())
    assert state["host_url"] == state["public_url"] == supervisor.public_url
    assert state["ports"] == dataclasses.asdict(ports)
    assert state["vault_url"] == f"https://{LOOPBACK}:{ports.vault}"
    assert Path(state["vault_ca"]).is_absolute()
    assert Path(state["vault_ca"]).is_file()
    assert state["storage_api_version"] == API_VERSION
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", state["started_at"])
    assert read_live_state(root / ".local") == state
    with BlobServiceClient.from_connection_string(
        state["storage"], api_version=state["storage_api_version"]
    ) as service:
        assert {c.name for c in service.list_containers()} >= set(layout.CONTAINERS)
    text = (root / ".local" / "stack.json").read_text()
    assert not re.search(r"wvt_", text), "stack.json must hold no token"
    check_entra_entry(supervisor, state["entra"])
    # The same settings, exported in the banner for a CLI that does not read the file.
    exported = dict(re.findall(r" (WHEELVAULT_\w+)=('[^']*'|\S+)", cli_env_line(supervisor)))
    assert {k: v.strip("'") for k, v in exported.items()} == {
        "WHEELVAULT_STORAGE": state["storage"],
        "WHEELVAULT_STORAGE_API_VERSION": state["storage_api_version"],
        "WHEELVAULT_VAULT_URL": state["vault_url"],
        "WHEELVAULT_VAULT_CREDENTIAL": "local",
        "WHEELVAULT_VAULT_CA_BUNDLE": state["vault_ca"],
        "WHEELVAULT_PUBLIC_URL": state["public_url"],
    }


def check_entra_entry(supervisor: Supervisor, entry: dict[str, str]) -> None:
    """Where the Entra ID stand-in is, what the host trusts, and no secret in stack.json or
    the banner: those stay in the stand-in's entra.json, which the entry names."""
    directory = read_directory(Path(entry["principals"]))
    assert entry["url"] == f"https://{LOOPBACK}:{supervisor.ports.entra}"
    assert entry["tenant_id"] == directory.tenant_id
    assert entry["scope"] == "api://wheelvault-local/.default"
    assert entry["identity_endpoint"] == f"{entry['url']}/msi/token"
    assert Path(entry["ca"]).is_file()
    assert Path(entry["ca_bundle"]).read_text().endswith(Path(entry["ca"]).read_text())
    host = json.loads((supervisor.root / ".local" / "host.settings.json").read_text())["Values"]
    assert {k: v for k, v in host.items() if k.startswith("WHEELVAULT_ENTRA_")} == {
        "WHEELVAULT_ENTRA_TENANT_ID": directory.tenant_id,
        "WHEELVAULT_ENTRA_AUDIENCE": entry["audience"],
        "WHEELVAULT_ENTRA_AUTHORITY": entry["url"],
        "WHEELVAULT_ENTRA_CA_BUNDLE": entry["ca"],
    }
    secrets = [p.client_secret for p in directory.principals.values()]
    shown = (supervisor.root / ".local" / "stack.json").read_text() + supervisor.stdout()
    assert [s for s in [*secrets, directory.identity_header] if s in shown] == []
    assert "entra token --role read|publish" in supervisor.stdout()


def cli_env_line(supervisor: Supervisor) -> str:
    found = re.search(r"^\s+cli env\s+export (.*)$", supervisor.stdout(), re.M)
    assert found is not None, supervisor.stdout()
    return " " + found[1]


def test_stack_json_of_a_killed_supervisor_reads_as_stale(
    supervisors: Supervisors, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    supervisor, _ = supervisors.start(root, free_ports())
    assert read_live_state(root / ".local") is not None
    supervisor.process.kill()  # its children get SIGTERM from the kernel
    supervisor.process.wait(STOP_TIMEOUT)
    assert (root / ".local" / "stack.json").exists()
    assert read_live_state(root / ".local") is None
    # The next start takes over: the file appears again only once it is ready.
    deadline = time.monotonic() + STOP_TIMEOUT
    while processes_mentioning(root) and time.monotonic() < deadline:
        time.sleep(0.1)
    second, _ = supervisors.start(root, free_ports())
    assert state_of(second)["pid"] == second.process.pid
    stop_and_check(second)


def test_settings_in_the_environment_win_except_the_endpoints(
    supervisors: Supervisors, tmp_path: Path
) -> None:
    """As Core Tools does: a variable already set beats local.settings.json; but a stale
    endpoint in the shell must not point the host away from this run's children."""
    env = {
        **os.environ,
        "WHEELVAULT_PAGE_CACHE_SECONDS": "7",
        "WHEELVAULT_VAULT_URL": "https://127.0.0.1:9",
        "WHEELVAULT_STORAGE": connection_string(LOOPBACK, 9),
        "WHEELVAULT_PUBLIC_URL": "http://elsewhere.invalid",
        "WHEELVAULT_ENTRA_TENANT_ID": "00000000-0000-0000-0000-000000000000",
        "WHEELVAULT_ENTRA_AUTHORITY": "https://login.microsoftonline.com",
    }
    root, ports = tmp_path / "root", free_ports()
    supervisor, _ = supervisors.start(root, ports, env)
    page = urllib.request.Request(f"{supervisor.public_url}/simple/")
    found = re.fullmatch(r"http://(?P<user>[^:]+):(?P<token>[^@]+)@.+", supervisor.index_url())
    assert found is not None
    raw = base64.b64encode(f"{found['user']}:{found['token']}".encode()).decode()
    page.add_header("Authorization", f"Basic {raw}")
    with DIRECT.open(page, timeout=10) as reply:
        assert reply.status == 200
        assert reply.headers["Cache-Control"] == "private, max-age=7"
    assert f"@{LOOPBACK}:{ports.host}/simple/" in supervisor.index_url()
    status, body = get(f"{supervisor.public_url}/health")
    assert status == 200, body
    assert state_of(supervisor)["public_url"] == supervisor.public_url
    # The host trusts this run's Entra ID stand-in, not the tenant the shell names.
    assert get(f"{supervisor.public_url}/simple/", "entra", entra_token(root))[0] == 200
    stop_and_check(supervisor)


def test_an_invalid_setting_in_the_environment_is_one_line_at_start(
    supervisors: Supervisors, tmp_path: Path
) -> None:
    env = {**os.environ, "WHEELVAULT_PAGE_CACHE_SECONDS": "soon"}
    supervisor = supervisors.launch(tmp_path / "root", free_ports(), env)
    assert supervisor.process.wait(START_TIMEOUT) == 1
    assert "WHEELVAULT_PAGE_CACHE_SECONDS" in supervisor.stderr()
    assert "Traceback" not in supervisor.stderr()
    assert processes_mentioning(tmp_path / "root") == []


RESTARTED = "devhost.stack: {title} restarted (pid "
TITLES = {
    "host": "the functions host",
    "keyvault": "the Key Vault stand-in",
    "entra": "the Entra ID stand-in",
    "azurite": "Azurite (blob storage)",
}
AZURITE_SAVE_SECONDS = 5.0
"""Azurite saves its blob metadata every 5 s: a kill -9 may lose what is newer."""
AZURITE_DB = Path(".local") / "azurite" / "__azurite_db_blob__.json"
SAVE_MARGIN_SECONDS = 1.0
"""A save whose file is this much newer than a write began after it (a save takes ms)."""


def test_a_killed_child_is_restarted_and_the_stack_keeps_its_packages_and_tokens(
    supervisors: Supervisors, tmp_path: Path
) -> None:
    root, ports = tmp_path / "root", free_ports()
    supervisor, _ = supervisors.start(root, ports)
    tokens = check_running(supervisor)
    first = state_of(supervisor)
    wait_until_azurite_saved(supervisor, publish(supervisor, "restart-demo", "1.0"))
    port_of = {
        "host": ports.host,
        "keyvault": ports.vault,
        "entra": ports.entra,
        "azurite": ports.blob,
    }
    for name in ("host", "keyvault", "entra", "azurite"):
        before = supervisor.pids()
        began = time.monotonic()
        os.kill(before[name], signal.SIGKILL)
        line = wait_for_line(supervisor, RESTARTED.format(title=TITLES[name]))
        print(f"{name}: back {time.monotonic() - began:.1f} s after kill -9 ({line})")
        after = supervisor.pids()
        assert after[name] != before[name]
        assert alive(after[name])
        assert {k: v for k, v in after.items() if k != name} == {
            k: v for k, v in before.items() if k != name
        }, "the other children must keep running"
        assert listening(port_of[name])
        assert f"{TITLES[name]} was killed by SIGKILL; restarting it in 1 s" in supervisor.stderr()
        assert get(f"{supervisor.public_url}/health")[0] == 200
        assert check_running(supervisor) == tokens  # the same tokens, from the vault
        assert state_of(supervisor) == first  # rewritten, the same stack on the same ports
    assert supervisor.process.poll() is None
    # The stand-in came back with its tenant and keys: its tokens still open the index.
    assert get(f"{supervisor.public_url}/simple/", "entra", entra_token(root))[0] == 200
    home = tmp_path / "home"
    assert_installs(supervisor.index_url(), tmp_path / "venv", home, "restart-demo")
    publish(supervisor, "restart-demo", "2.0")  # and publishing still works after them
    stop_and_check(supervisor)


def publish(supervisor: Supervisor, project: str, version: str) -> str:
    """Drop a wheel into `uploads` and wait for the host's blob watcher to publish it; its
    filename."""
    wheel = build_wheel(project, version)
    with supervisor.blob_service() as service:
        service.get_blob_client(layout.UPLOADS, wheel.filename).upload_blob(wheel.data)
        published = service.get_blob_client(layout.INDEX, f"files/{project}/{wheel.filename}")
        deadline = time.monotonic() + PUBLISH_TIMEOUT
        while not published.exists():
            assert time.monotonic() < deadline, supervisor.host_log()[-3000:]
            time.sleep(0.2)
    return wheel.filename


def wait_until_azurite_saved(supervisor: Supervisor, upload: str) -> None:
    """Until Azurite has saved everything the publish of `upload` wrote: the publish's last
    write removes the upload; then a save of the metadata that began after that."""
    deadline = time.monotonic() + PUBLISH_TIMEOUT
    with supervisor.blob_service() as service:
        pending = service.get_blob_client(layout.UPLOADS, upload)
        while pending.exists():
            assert time.monotonic() < deadline, supervisor.host_log()[-3000:]
            time.sleep(0.1)
    wanted = time.time() + SAVE_MARGIN_SECONDS
    saved = supervisor.root / AZURITE_DB
    deadline = time.monotonic() + SAVE_MARGIN_SECONDS + 3 * AZURITE_SAVE_SECONDS
    while not (saved.exists() and saved.stat().st_mtime > wanted):
        assert time.monotonic() < deadline, f"Azurite did not save {saved} in time"
        time.sleep(0.1)


def wait_for_line(supervisor: Supervisor, start: str) -> str:
    """The supervisor's stderr line that starts with `start`, once it has printed it."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        found = [line for line in supervisor.stderr().splitlines() if line.startswith(start)]
        if found:
            return found[-1]
        assert supervisor.process.poll() is None, supervisor.stderr()
        assert time.monotonic() < deadline, supervisor.stderr()
        time.sleep(0.1)
