"""The local host's blob triggers, timers and admin API, with a recording app and the real one.

Each test points the sample app's functions at containers of its own (``%WV_TRIGGER_PREFIX%``)
and runs only the functions it needs, with short retry delays.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import itertools
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import BlobServiceClient

from devhost.listening import free_port
from devhost.standins.azurite import API_VERSION, Azurite, start_azurite
from devhost.standins.host.functions import index_functions
from devhost.standins.host.invoke import EventLoopThread
from devhost.standins.host.localhost import READY_PREFIX, LocalHost
from devhost.standins.host.timers import TimerRunner, plan_timer
from devhost.wheels import build_wheel
from shared.adapters.blobstore import BlobStore
from shared.core import layout
from tests.support import trigger_app
from tests.support.trigger_app import CONNECTION, SECRET_IN_ERROR, calls

REPO_ROOT = Path(__file__).resolve().parents[2]
FAST_RETRIES = (0.05, 0.1, 0.2, 0.4)
FAST_POLL = 0.05
FUNCTION_LOG = "devhost.host.functions"
FAR_AWAY = "0 0 0 1 1 *"

pytestmark = pytest.mark.integration


# -- fixtures and helpers ----------------------------------------------------------------------


@pytest.fixture
def prefix(
    azurite: Azurite, blob_service: BlobServiceClient, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """Fresh containers ``{prefix}-in`` etc. for the sample app; no quarantine container yet."""
    name = f"t{uuid.uuid4().hex[:10]}"
    monkeypatch.setenv("WV_TRIGGER_PREFIX", name)
    monkeypatch.setenv(CONNECTION, azurite.connection_string)
    monkeypatch.setenv("WHEELVAULT_STORAGE_API_VERSION", API_VERSION)
    monkeypatch.setenv("WV_TICK_SCHEDULE", FAR_AWAY)
    containers = [f"{name}-{suffix}" for suffix in ("in", "flaky", "bad", "slow", "async")]
    for container in containers:
        blob_service.create_container(container)
    calls.clear()
    yield name
    for container in [*containers, f"{name}-quarantine"]:
        with contextlib.suppress(ResourceNotFoundError):
            blob_service.delete_container(container)


@contextlib.contextmanager
def running(*functions: str, **options: Any) -> Iterator[LocalHost]:
    """A host with the named sample functions and triggers on; no thread may outlive it."""
    before = set(threading.enumerate())
    options.setdefault("triggers", True)
    options.setdefault("poll_interval", FAST_POLL)
    options.setdefault("retry_delays", FAST_RETRIES)
    host = LocalHost(
        functions=trigger_app.functions(*functions), port=0, load_settings=False, **options
    )
    with host:
        yield host
    left = [t.name for t in threading.enumerate() if t not in before]
    assert left == [], f"threads left behind: {left}"


def upload(service: BlobServiceClient, container: str, name: str, data: bytes, **kw: Any) -> str:
    result = service.get_blob_client(container, name).upload_blob(data, overwrite=True, **kw)
    return str(result["etag"])


def blob_names(service: BlobServiceClient, container: str) -> list[str]:
    return sorted(b.name for b in service.get_container_client(container).list_blobs())


def post(host: LocalHost, path: str, body: object = None) -> tuple[int, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", host.port, timeout=10)
    try:
        payload = b"" if body is None else json.dumps(body).encode()
        connection.request("POST", path, body=payload, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        raw = response.read()
        return response.status, json.loads(raw) if raw else None
    finally:
        connection.close()


def function_lines(caplog: pytest.LogCaptureFixture, function: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == FUNCTION_LOG and r.getMessage().startswith(f"{function} ")
    ]


def wait_until(condition: Any, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


# -- blob triggers -----------------------------------------------------------------------------


def test_a_new_blob_is_delivered_within_a_second_with_a_real_input_stream(
    prefix: str, blob_service: BlobServiceClient, caplog: pytest.LogCaptureFixture
) -> None:
    container = f"{prefix}-in"
    data = bytes(range(256)) * 10
    name = "dir/a b é.bin"
    caplog.set_level(logging.INFO, logger=FUNCTION_LOG)
    with running("record", poll_interval=0.25):  # the default interval
        time.sleep(0.3)  # the watcher is polling an empty container
        uploaded_at = time.time()
        etag = upload(blob_service, container, name, data, metadata={"origin": "test"})
        (call,) = calls.wait_for("record", timeout=5)
        assert call.at - uploaded_at < 1.0
        assert call.name == f"{container}/{name}"
        assert call.uri == blob_service.get_blob_client(container, name).url
        assert call.uri.endswith(f"/{container}/dir/a%20b%20%C3%A9.bin")
        assert call.length == len(data)
        assert call.data == data
        assert call.metadata == {"origin": "test"}
        assert call.properties["ETag"] == etag
        assert call.properties["Length"] == len(data)
        assert call.properties["BlobType"] == "BlockBlob"
        time.sleep(0.6)  # more polls: the same blob is not delivered again
        assert len(calls.of("record")) == 1
        new_etag = upload(blob_service, container, name, b"second version")
        second = calls.wait_for("record", 2)[1]
        assert (second.data, second.properties["ETag"]) == (b"second version", new_etag)
    (line, *_) = function_lines(caplog, "record")
    assert re.fullmatch(r"record blob 't\w+-in/dir/a b é\.bin' \d+\.\dms ok", line), line


def test_blobs_waiting_at_start_are_delivered_and_patterns_filter_names(
    prefix: str, blob_service: BlobServiceClient
) -> None:
    for name in ("one", "two", "nested/three"):
        upload(blob_service, f"{prefix}-in", name, name.encode())
    upload(blob_service, f"{prefix}-async", "note.txt", b"async")
    upload(blob_service, f"{prefix}-async", "note.bin", b"not matched by {name}.txt")
    with running("record", "async_record"):
        delivered = calls.wait_for("record", 3)
        (async_call,) = calls.wait_for("async_record")
        time.sleep(0.3)
    assert sorted(c.data for c in delivered) == [b"nested/three", b"one", b"two"]
    assert async_call.name == f"{prefix}-async/note.txt"
    assert len(calls.of("async_record")) == 1


def test_a_failing_function_is_retried_with_backoff_until_it_succeeds(
    prefix: str, blob_service: BlobServiceClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=FUNCTION_LOG)
    with running("flaky"):
        upload(blob_service, f"{prefix}-flaky", "wheel.whl", b"payload")
        attempts = calls.wait_for("flaky", trigger_app.FLAKY_FAILURES + 1)
        time.sleep(0.5)
        assert len(calls.of("flaky")) == trigger_app.FLAKY_FAILURES + 1  # no more after success
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(attempts)]
    assert gaps[0] >= FAST_RETRIES[0] - 0.01
    assert gaps[1] >= FAST_RETRIES[1] - 0.01
    lines = function_lines(caplog, "flaky")
    assert [line.split("ms ", 1)[1] for line in lines] == [
        "failed: ConnectionError; retrying 2 of 5",
        "failed: ConnectionError; retrying 3 of 5",
        "ok",
    ]
    assert SECRET_IN_ERROR not in caplog.text
    assert blob_names(blob_service, f"{prefix}-flaky") == ["wheel.whl"]  # the function keeps it


def test_a_function_that_always_fails_runs_5_times_then_the_blob_is_quarantined(
    prefix: str, blob_service: BlobServiceClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="devhost.host")
    data = b"never processed"
    quarantine = f"{prefix}-quarantine"
    with running("always_fails", quarantine_container=quarantine):
        upload(blob_service, f"{prefix}-bad", "x.whl", data)
        calls.wait_for("always_fails", 5)
        wait_until(lambda: blob_names(blob_service, f"{prefix}-bad") == [], what="the move")
        time.sleep(0.5)
        assert len(calls.of("always_fails")) == 5
    assert blob_names(blob_service, quarantine) == ["x.whl", "x.whl.reason.json"]
    stored = blob_service.get_blob_client(quarantine, "x.whl").download_blob().readall()
    assert stored == data
    reason_bytes = blob_service.get_blob_client(quarantine, "x.whl.reason.json")
    reason = json.loads(reason_bytes.download_blob().readall())
    assert reason["code"] == "handler-failed"
    assert "failed 5 times" in reason["message"]
    assert "RuntimeError" in reason["message"]
    assert reason["sha256"] == hashlib.sha256(data).hexdigest()
    assert reason["size"] == len(data)
    assert datetime.fromisoformat(reason["at"]) > datetime.now(UTC) - timedelta(minutes=1)
    assert SECRET_IN_ERROR not in json.dumps(reason)
    outcomes = [line.split("ms ", 1)[1] for line in function_lines(caplog, "always_fails")]
    assert outcomes == [f"failed: RuntimeError; retrying {n} of 5" for n in range(2, 6)] + [
        "failed: RuntimeError; poisoned after 5 attempts"
    ]
    # Only a DEBUG record carries the traceback (and so the text); INFO and up never do.
    for record in caplog.records:
        if record.levelno >= logging.INFO:
            assert SECRET_IN_ERROR not in record.getMessage()
            assert record.exc_info is None


def test_the_same_blob_is_never_delivered_twice_at_once(
    prefix: str, blob_service: BlobServiceClient
) -> None:
    container = f"{prefix}-slow"
    with running("slow", poll_interval=0.02) as host:
        upload(blob_service, container, "big.whl", b"slow")
        calls.wait_for("slow")
        status, body = post(host, "/admin/functions/slow", {"input": f"{container}/big.whl"})
        assert status == 409, body
        assert body["error"]["code"] == "busy"
        time.sleep(trigger_app.SLOW_SECONDS + 0.3)
        assert len(calls.of("slow")) == 1
        assert calls.most_running["slow"] == 1


def test_the_watcher_survives_an_azurite_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="devhost.host")
    data_dir, port = tmp_path / "azurite", free_port()
    own = start_azurite(data_dir, port=port)
    try:
        service = BlobServiceClient.from_connection_string(
            own.connection_string, api_version=API_VERSION
        )
        monkeypatch.setenv("WV_TRIGGER_PREFIX", "restart")
        monkeypatch.setenv(CONNECTION, own.connection_string)
        monkeypatch.setenv("WHEELVAULT_STORAGE_API_VERSION", API_VERSION)
        service.create_container("restart-in")
        calls.clear()
        with running("record"):
            upload(service, "restart-in", "before", b"before")
            calls.wait_for("record", name="restart-in/before")
            own.stop()
            time.sleep(0.6)  # several polls fail meanwhile
            own = start_azurite(data_dir, port=port)
            with contextlib.suppress(ResourceExistsError):
                service.create_container("restart-in")  # in case it was not persisted yet
            upload(service, "restart-in", "after", b"after")
            (after,) = calls.wait_for("record", name="restart-in/after", timeout=10)
            assert after.data == b"after"
    finally:
        own.stop()
    failures = [r for r in caplog.records if "cannot list container" in r.getMessage()]
    assert len(failures) == 1  # one line per outage, not one per poll
    assert any("storage answers again" in r.getMessage() for r in caplog.records)
    assert own.connection_string.split("AccountKey=")[1].split(";")[0] not in caplog.text


@pytest.mark.parametrize(
    ("settings", "reason"),
    [
        ({}, "app setting WV_TRIGGER_STORAGE (the blob connection) is not set"),
        (
            {f"{CONNECTION}__blobServiceUri": "https://example.blob.core.windows.net"},
            "connection WV_TRIGGER_STORAGE is identity-based; the local host needs a "
            "connection string in app setting WV_TRIGGER_STORAGE",
        ),
        ({CONNECTION: "AccountKey=secret-looking"}, "is not a valid storage connection string"),
        ({CONNECTION: "x", "WV_TRIGGER_PREFIX": "Bad_Name"}, "does not start with a valid"),
    ],
)
def test_a_blob_function_without_a_usable_connection_is_a_listed_problem(
    monkeypatch: pytest.MonkeyPatch, settings: dict[str, str], reason: str
) -> None:
    monkeypatch.setenv("WV_TRIGGER_PREFIX", "fine")
    monkeypatch.delenv(CONNECTION, raising=False)
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    local = LocalHost(functions=trigger_app.functions("record"), port=0, load_settings=False)
    ((name, problem),) = [(p.info.name, p.reason) for p in local.problems]
    assert name == "record"
    assert reason in problem
    assert "secret-looking" not in problem
    assert local.blob_functions == ()


@pytest.mark.parametrize(
    "options",
    [
        {"poll_interval": 0},
        {"max_attempts": 0},
        {"retry_delays": (1.0, -1.0)},
        {"quarantine_container": "Not_A_Container"},
    ],
)
def test_bad_trigger_options_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"must be|cannot be|not a valid"):
        LocalHost(functions=(), load_settings=False, **options)


# -- timers --------------------------------------------------------------------------------------


def test_a_timer_every_second_runs_about_every_second_and_not_past_due(
    prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WV_TICK_SCHEDULE", "*/1 * * * * *")
    with running("tick") as host:
        assert '"*/1 * * * * *" UTC (next ' in "\n".join(host.describe())
        ticks = calls.wait_for("tick", 3, timeout=6)
    gaps = [b.at - a.at for a, b in itertools.pairwise(ticks)]
    assert all(0.7 < gap < 1.3 for gap in gaps), gaps
    assert all(t.at % 1 < 0.3 for t in ticks)  # on the second, not a second after start
    assert [t.past_due for t in ticks] == [False] * len(ticks)
    assert "Next" in ticks[0].schedule_status


def test_past_due_is_set_when_a_run_starts_late() -> None:
    """A clock that jumps 5 s ahead is what a paused process sees when it resumes."""
    offset = [timedelta(0)]

    def clock() -> datetime:
        return datetime.now(UTC) + offset[0]

    (info,) = index_functions(trigger_app.functions("tick"))
    timer = plan_timer(info, {"WV_TICK_SCHEDULE": "*/1 * * * * *"})
    loop = EventLoopThread()
    runner = TimerRunner(timer, loop, clock=clock, max_sleep=0.1)
    calls.clear()
    runner.start()
    try:
        calls.wait_for("tick", 1)
        # Jump while the runner waits for the next second: it wakes 4+ s late.
        offset[0] = timedelta(seconds=5)
        ticks = calls.wait_for("tick", 3)
    finally:
        runner.stop()
        loop.stop()
    assert ticks[0].past_due is False
    assert ticks[1].past_due is True
    assert ticks[2].past_due is False  # missed seconds are not caught up one by one


def test_run_on_startup_and_failing_timers(prefix: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=FUNCTION_LOG)
    with running("on_startup", "failing_timer") as host:
        (startup,) = calls.wait_for("on_startup")
        assert startup.past_due is False
        assert post(host, "/admin/functions/failing_timer", {})[0] == 202
        calls.wait_for("failing_timer")
        wait_until(lambda: function_lines(caplog, "failing_timer"), what="the log line")
    assert re.fullmatch(r"on_startup timer \d+\.\dms ok", function_lines(caplog, "on_startup")[0])
    assert re.fullmatch(
        r"failing_timer admin \d+\.\dms failed: RuntimeError",
        function_lines(caplog, "failing_timer")[0],
    )
    assert SECRET_IN_ERROR not in caplog.text


def test_schedules_come_from_settings_and_a_missing_one_is_a_listed_problem(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = func.FunctionApp()

    @app.timer_trigger(arg_name="timer", schedule="%WV_TEST_UNSET_SCHEDULE%")
    def unset(timer: func.TimerRequest) -> None:
        raise AssertionError("never runs")

    @app.timer_trigger(arg_name="timer", schedule="%WV_TEST_BAD_SCHEDULE%")
    def bad(timer: func.TimerRequest) -> None:
        raise AssertionError("never runs")

    @app.timer_trigger(arg_name="timer", schedule="0 %WV_TEST_MINUTE% 9 * * MON-FRI")
    def weekdays(timer: func.TimerRequest) -> None:
        pass

    @app.route(route="up")
    def up(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("up")

    monkeypatch.delenv("WV_TEST_UNSET_SCHEDULE", raising=False)
    monkeypatch.setenv("WV_TEST_BAD_SCHEDULE", "0 0 25 * * *")
    monkeypatch.setenv("WV_TEST_MINUTE", "30")
    local = LocalHost(app, port=0, load_settings=False, host_json=None, triggers=True)
    problems = {p.info.name: p.reason for p in local.problems}
    assert problems == {
        "unset": "app setting WV_TEST_UNSET_SCHEDULE is not set",
        "bad": "schedule '0 0 25 * * *': hour field '25': 25 is outside 0-23",
    }
    assert [t.schedule.text for t in local.timer_functions] == ["0 30 9 * * MON-FRI"]
    with local:
        listing = "\n".join(local.describe())
        assert "  unset: error: app setting WV_TEST_UNSET_SCHEDULE is not set" in listing
        assert '  weekdays: timerTrigger schedule "0 30 9 * * MON-FRI" UTC (next ' in listing
        connection = http.client.HTTPConnection("127.0.0.1", local.port, timeout=10)
        try:
            connection.request("GET", "/api/up")
            assert connection.getresponse().status == 200  # the rest of the host runs
        finally:
            connection.close()
        status, body = post(local, "/admin/functions/unset", {})
        assert (status, body["error"]["code"]) == (400, "function-error")


# -- admin API -----------------------------------------------------------------------------------


def test_the_admin_api_runs_timer_and_blob_functions_now(
    prefix: str, blob_service: BlobServiceClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=FUNCTION_LOG)
    container = f"{prefix}-in"
    with running("tick", "record", "hello", triggers=False) as host:
        listing = "\n".join(host.describe())
        assert "not watched: blob triggers are off; POST /admin/functions/record runs it" in listing
        assert "not scheduled: timers are off" in listing
        status, body = post(host, "/admin/functions/tick", {})
        assert (status, body) == (202, {})
        (tick,) = calls.wait_for("tick")
        assert tick.past_due is False
        etag = upload(blob_service, container, "manual.bin", b"by hand")
        status, _ = post(host, "/admin/functions/Record", {"input": f"{container}/manual.bin"})
        assert status == 202
        (manual,) = calls.wait_for("record")
        assert (manual.name, manual.data) == (f"{container}/manual.bin", b"by hand")
        assert manual.properties["ETag"] == etag
        assert post(host, "/admin/functions/tick")[0] == 202  # no body at all is fine too
        calls.wait_for("tick", 2)
        wait_until(lambda: len(function_lines(caplog, "tick")) == 2, what="log lines")
    assert re.fullmatch(r"tick admin \d+\.\dms ok", function_lines(caplog, "tick")[0])
    (line,) = function_lines(caplog, "record")
    assert line.startswith(f"record admin '{container}/manual.bin' ")


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("/admin/functions/nope", {}, 404, "not-found"),
        ("/admin/functions/hello", {}, 400, "http-function"),
        ("/admin/functions/record", {}, 400, "bad-input"),
        ("/admin/functions/record", {"input": "other-container/x"}, 400, "bad-input"),
        ("/admin/functions/record", {"input": "{prefix}-in/missing"}, 404, "blob-not-found"),
        ("/admin/functions/record", ["not", "an", "object"], 400, "bad-request"),
    ],
)
def test_admin_api_errors_are_json(
    prefix: str, path: str, body: object, status: int, code: str
) -> None:
    if isinstance(body, dict) and "input" in body:
        body = {"input": str(body["input"]).replace("{prefix}", prefix)}
    with running("record", "hello", triggers=False) as host:
        answer = post(host, path, body)
        connection = http.client.HTTPConnection("127.0.0.1", host.port, timeout=10)
        try:
            connection.request("GET", "/admin/functions/record")
            refused = connection.getresponse()
            refused.read()
        finally:
            connection.close()
        assert (refused.status, refused.getheader("Allow")) == (405, "POST")
    assert answer[0] == status, answer
    assert answer[1]["error"]["code"] == code


# -- the real function app -----------------------------------------------------------------------


def test_the_real_app_publishes_uploads_and_quarantines_non_wheels(
    storage_env: BlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.support.functions import registered  # shares the one get_functions() call

    monkeypatch.setenv("WHEELVAULT_ROTATION_SCHEDULE", FAR_AWAY)
    wheel = build_wheel("triggered", "1.0")
    before = set(threading.enumerate())
    local = LocalHost(
        functions=registered().values(),
        port=0,
        load_settings=False,
        triggers=True,
        retry_delays=FAST_RETRIES,
    )
    assert local.problems == ()
    with local:
        listing = "\n".join(local.describe())
        assert "  publish_upload: blobTrigger uploads/{name} (watching container uploads)" in (
            listing
        )
        assert f'  rotate_tokens: timerTrigger schedule "{FAR_AWAY}" UTC (next ' in listing
        storage_env.put(layout.UPLOADS, wheel.filename, wheel.data, content_type="x/y")
        storage_env.put(layout.UPLOADS, "notes.txt", b"not a wheel", content_type="text/plain")
        path = layout.file_path("triggered", wheel.filename)  # type: ignore[arg-type]
        wait_until(lambda: storage_env.info(layout.INDEX, path) is not None, 10, "publishing")
        wait_until(
            lambda: storage_env.info(layout.QUARANTINE, "notes.txt.reason.json") is not None,
            10,
            "the quarantine",
        )
        wait_until(lambda: not list(storage_env.list(layout.UPLOADS, "")), 10, "empty uploads")
    # The app's own pools (page refreshes) belong to its services; the host's threads are gone.
    left = [t.name for t in threading.enumerate() if t not in before]
    assert [name for name in left if name.startswith("devhost")] == []
    published = storage_env.get(layout.INDEX, path)
    assert published is not None
    assert published.data == wheel.data
    reason = storage_env.get(layout.QUARANTINE, "notes.txt.reason.json")
    assert reason is not None
    assert json.loads(reason.data)["code"] == "not-a-wheel"


def test_the_cli_runs_triggers_and_lists_them(
    storage_env: BlobStore, azurite: Azurite, tmp_path: Path
) -> None:
    from tests.support.functions import registered

    settings = tmp_path / "local.settings.json"
    values = {
        "WHEELVAULT_STORAGE": azurite.connection_string,
        "WHEELVAULT_STORAGE_API_VERSION": API_VERSION,
        "WHEELVAULT_ROTATION_SCHEDULE": FAR_AWAY,
    }
    settings.write_text(json.dumps({"Values": values}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("WHEELVAULT_")}
    wheel = build_wheel("from-cli", "2.0")
    process = subprocess.Popen(
        [sys.executable, "-m", "devhost.standins.host", "--port", "0", "--settings", str(settings)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().startswith(READY_PREFIX)
        assert process.stdout.readline() == "functions:\n"
        listing = [process.stdout.readline() for _ in registered()]
        storage_env.put(layout.UPLOADS, wheel.filename, wheel.data, content_type="x/y")
        path = layout.file_path("from-cli", wheel.filename)  # type: ignore[arg-type]
        wait_until(lambda: storage_env.info(layout.INDEX, path) is not None, 10, "publishing")
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr
    assert "  publish_upload: blobTrigger uploads/{name} (watching container uploads)\n" in listing
    schedule = f'  rotate_tokens: timerTrigger schedule "{FAR_AWAY}" UTC (next '
    assert any(line.startswith(schedule) for line in listing), listing
    assert re.search(rf"publish_upload blob 'uploads/{re.escape(wheel.filename)}' \S+ms ok", stderr)
    assert "AccountKey" not in stderr
    assert "Traceback" not in stderr
