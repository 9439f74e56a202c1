"""The supervisor's pieces that need no running service: the restart policy and its loop,
`.local/stack.json` and its staleness rule, and the ports `make run` passes on."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from devhost.stack import __main__ as supervisor
from devhost.stack.children import StackError
from devhost.stack.config import DEFAULT_PORTS, STACK_OWNED, Ports, child_environment
from devhost.stack.entra import SETTINGS as ENTRA_SETTINGS
from devhost.stack.entra import entra_endpoint
from devhost.stack.restarts import RestartPolicy
from devhost.stack.state import is_live, read_live_state, this_process, write_json
from devhost.standins.entra.principals import load_or_create

ROOT = Path(__file__).resolve().parents[2]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_restarts_back_off_then_give_up_within_the_window() -> None:
    clock = Clock()
    policy = RestartPolicy(clock=clock)
    delays = []
    for _ in range(5):
        delays.append(policy.died("host"))
        clock.now += 10
    assert delays == [1, 2, 4, 8, 8]
    assert policy.died("host") is None  # a sixth death within 120 s
    assert policy.died("azurite") == 1  # counted per child


def test_deaths_older_than_the_window_are_forgotten() -> None:
    clock = Clock()
    policy = RestartPolicy(clock=clock)
    assert [policy.died("vault") for _ in range(3)] == [1, 2, 4]
    clock.now += 121
    assert policy.died("vault") == 1


@dataclass
class FakeChild:
    name: str = "host"
    title: str = "the functions host"
    pid: int = 4242
    log_path: Path = Path("/logs/host.log")

    def exit_text(self) -> str:
        return "was killed by SIGKILL"

    def failure(self, what: str) -> str:
        return f"{self.title} {what}; last lines of {self.log_path}:\n    boom"


@dataclass
class FakeStack:
    """Its child dies `deaths` times; restarts fail while `broken` is true."""

    deaths: int
    broken: bool
    stop_after_restarts: threading.Event
    restarted: list[str] = field(default_factory=list)

    def dead_child(self) -> FakeChild | None:
        return FakeChild() if len(self.restarted) < self.deaths else None

    def restart(self, name: str) -> FakeChild:
        self.restarted.append(name)
        if self.broken:
            raise StackError("the functions host exited with code 2 during start-up; see log")
        if len(self.restarted) == self.deaths:
            self.stop_after_restarts.set()
        return FakeChild(pid=5000 + len(self.restarted))


def test_the_supervisor_says_each_restart_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    stop = threading.Event()
    stack = FakeStack(deaths=2, broken=False, stop_after_restarts=stop)
    policy = RestartPolicy(first_delay=0, max_delay=0)
    assert supervisor._supervise(stack, stop, policy) is None  # type: ignore[arg-type]
    assert stack.restarted == ["host", "host"]
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "devhost.stack: the functions host was killed by SIGKILL; restarting it in 0 s "
        "(restart 1 of at most 5 within 120 s; log /logs/host.log)",
        lines[1],
        "devhost.stack: the functions host was killed by SIGKILL; restarting it in 0 s "
        "(restart 2 of at most 5 within 120 s; log /logs/host.log)",
        lines[3],
    ]
    assert lines[1].startswith("devhost.stack: the functions host restarted (pid 5001), ready in")
    assert lines[3].startswith("devhost.stack: the functions host restarted (pid 5002), ready in")


def test_a_child_that_cannot_come_back_ends_the_stack_with_a_clear_message(
    capsys: pytest.CaptureFixture[str],
) -> None:
    stop = threading.Event()
    stack = FakeStack(deaths=100, broken=True, stop_after_restarts=stop)
    policy = RestartPolicy(first_delay=0, max_delay=0, limit=3)
    gave_up = supervisor._supervise(stack, stop, policy)  # type: ignore[arg-type]
    assert stack.restarted == ["host"] * 3
    assert gave_up is not None
    assert gave_up.splitlines()[0] == (
        "the functions host was killed by SIGKILL; it died 4 times within 120 s, "
        "so it is not restarted again; last lines of /logs/host.log:"
    )
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 6, err  # per try: the death, then why the restart failed
    assert err[1] == (
        "devhost.stack: the functions host did not come back: "
        "the functions host exited with code 2 during start-up; see log"
    )


def test_a_signal_during_the_backoff_stops_without_restarting() -> None:
    stop = threading.Event()
    stack = FakeStack(deaths=1, broken=False, stop_after_restarts=stop)
    policy = RestartPolicy(first_delay=30)
    threading.Timer(0.7, stop.set).start()
    assert supervisor._supervise(stack, stop, policy) is None  # type: ignore[arg-type]
    assert stack.restarted == []


def test_stack_json_is_live_only_for_the_process_that_wrote_it(tmp_path: Path) -> None:
    local = tmp_path / ".local"
    assert read_live_state(local) is None  # no file
    state = {**this_process(), "host_url": "http://127.0.0.1:7071"}
    write_json(local / "stack.json", state)
    assert read_live_state(local) == state
    assert [p.name for p in local.iterdir()] == ["stack.json"]  # no temp file left
    assert not is_live({**state, "pid": _dead_pid()})
    if state["pid_start"] is not None:  # Linux: a reused pid is another process
        assert not is_live({**state, "pid_start": state["pid_start"] - 1})
    if state["boot"] is not None:
        assert not is_live({**state, "boot": "another-boot"})
    assert not is_live({**state, "version": 2})
    (local / "stack.json").write_text("{half a fi")
    assert read_live_state(local) is None


def _dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_make_run_passes_the_ports_to_the_supervisor() -> None:
    names = ("HOST_PORT", "BLOB_PORT", "VAULT_PORT", "ENTRA_PORT")
    env = {k: v for k, v in os.environ.items() if k not in names}
    given = _make_run(
        ["HOST_PORT=7171", "BLOB_PORT=10100", "VAULT_PORT=8543", "ENTRA_PORT=8544"], env
    )
    assert given.endswith("--host-port 7171 --blob-port 10100 --vault-port 8543 --entra-port 8544")
    defaults = "--host-port 7071 --blob-port 10000 --vault-port 8443 --entra-port 8444"
    assert _make_run([], env).endswith(defaults)
    from_env = _make_run([], {**env, "HOST_PORT": "7272", "ENTRA_PORT": "8555"})
    assert from_env.endswith(
        "--host-port 7272 --blob-port 10000 --vault-port 8443 --entra-port 8555"
    )


def test_the_supervisor_takes_every_port_make_run_passes() -> None:
    """Ports and `python -m devhost.stack` agree: one option per port, same defaults."""
    parsed = supervisor._parse_args([])
    assert (
        Ports(
            blob=parsed.blob_port,
            vault=parsed.vault_port,
            host=parsed.host_port,
            entra=parsed.entra_port,
        )
        == DEFAULT_PORTS
        == Ports(blob=10000, vault=8443, host=7071, entra=8444)
    )


def _make_run(variables: list[str], env: dict[str, str]) -> str:
    """The command `make run` would exec (`make -n`: nothing is run)."""
    done = subprocess.run(
        ["make", "-n", "-C", str(ROOT), "run", *variables],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    lines = [line for line in done.stdout.splitlines() if "-m devhost.stack" in line]
    assert len(lines) == 1, done.stdout
    return lines[0]


def test_the_state_file_round_trips_as_json(tmp_path: Path) -> None:
    path = tmp_path / "stack.json"
    write_json(path, {"version": 1, "ports": {"host": 7071}})
    assert json.loads(path.read_text()) == {"version": 1, "ports": {"host": 7071}}


def test_the_entra_entry_names_the_secrets_file_but_holds_no_secret(tmp_path: Path) -> None:
    """stack.json's "entra" entry and the host's settings come from the stand-in's data dir;
    the principals' secrets and the identity header stay in its entra.json."""
    directory = load_or_create(tmp_path / "entra")
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\nlocal\n-----END CERTIFICATE-----\n")
    endpoint = entra_endpoint("https://127.0.0.1:8444", ca, tmp_path / "entra")
    state = endpoint.state()
    app = directory.wheelvault
    assert state == {
        "url": "https://127.0.0.1:8444",
        "ca": str(ca),
        "ca_bundle": str(tmp_path / "entra" / "trust.pem"),
        "tenant_id": directory.tenant_id,
        "audience": f"api://wheelvault-local,{app.client_id}",
        "scope": "api://wheelvault-local/.default",
        "identity_endpoint": "https://127.0.0.1:8444/msi/token",
        "principals": str(tmp_path / "entra" / "entra.json"),
    }
    secrets = [p.client_secret for p in directory.principals.values()]
    assert not [s for s in [*secrets, directory.identity_header] if s in json.dumps(state)]
    assert endpoint.settings() == {
        "WHEELVAULT_ENTRA_TENANT_ID": directory.tenant_id,
        "WHEELVAULT_ENTRA_AUDIENCE": f"api://wheelvault-local,{app.client_id}",
        "WHEELVAULT_ENTRA_AUTHORITY": "https://127.0.0.1:8444",
        "WHEELVAULT_ENTRA_CA_BUNDLE": str(ca),
    }
    # The trust bundle: the public roots, then the stand-in's CA (REQUESTS_CA_BUNDLE replaces
    # the roots of every requests-based tool in the shell: pip must still reach PyPI).
    trust = (tmp_path / "entra" / "trust.pem").read_text()
    assert trust.endswith(ca.read_text())
    assert trust.count("BEGIN CERTIFICATE") > 10


def test_the_host_gets_the_stands_ins_entra_settings_whatever_the_shell_says() -> None:
    assert set(ENTRA_SETTINGS) <= set(STACK_OWNED)
    shell = {"WHEELVAULT_ENTRA_TENANT_ID": "a-real-tenant", "WHEELVAULT_ENTRA_AUTHORITY": "x"}
    assert not set(child_environment(shell)) & set(ENTRA_SETTINGS)
