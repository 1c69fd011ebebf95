"""What every benchmark module shares: servers in subprocesses, wrk, timing, the results."""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
PYTHON = sys.executable
IMAGIFY = str(Path(PYTHON).with_name("imagify"))
SECRET = "bench-secret-key-of-at-least-32-characters"


@dataclass
class Options:
    """How long and how hard: `--quick` shrinks everything for a smoke run."""

    duration: float = 8.0  # seconds of measured load per wrk run
    warmup: float = 2.0
    connections: int = 16
    rows_large: int = 100_000
    rows_small: int = 1_000
    runs: int = 5  # best-of/median runs for in-process timings
    cloud: bool = True


@dataclass
class Figure:
    """One measured line of the table."""

    section: str
    name: str
    value: str
    detail: str = ""


@dataclass
class Target:
    """One row of the issue's target table, with its side-by-side ratio."""

    what: str
    against: str
    target: str
    ratio: float | None
    met: bool | None
    measured: str
    note: str = ""


@dataclass
class Report:
    figures: list[Figure] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def figure(self, section: str, name: str, value: str, detail: str = "") -> None:
        self.figures.append(Figure(section, name, value, detail))
        print(f"  {section:<10} {name:<58} {value:>16}  {detail}", flush=True)

    def target(self, target: Target) -> None:
        self.targets.append(target)
        verdict = {True: "met", False: "NOT met", None: "n/a"}[target.met]
        ratio = "-" if target.ratio is None else f"{target.ratio:.2f}x"
        print(f"  TARGET {target.what}: {ratio} (target {target.target}) {verdict}", flush=True)


# Timing in-process.


def timings(fn: Callable[[], object], runs: int, warmup: int = 1) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def interleaved(fns: dict[str, Callable[[], object]], runs: int) -> dict[str, float]:
    """Median seconds of each function, run in turns so a noisy neighbour hits them alike."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(runs):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


# Servers and wrk.


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 60.0, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode} before answering {url}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status < 500:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"no answer from {url} within {timeout}s")


@contextmanager
def server(args: list[str], env: dict[str, str], ready_path: str, log: Path) -> Iterator[str]:
    """Start a server on a free loopback port ({port} in args), yield its base URL, stop it."""
    port = free_port()
    args = [a.replace("{port}", str(port)) for a in args]
    with log.open("ab") as out:
        process = subprocess.Popen(
            args, env={**os.environ, **env}, cwd=env.get("BENCH_CWD", str(ROOT)),
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    SERVER_GROUPS[base] = process.pid  # its own session: the group id is its pid
    try:
        wait_http(base + ready_path, process=process)
        yield base
    finally:
        SERVER_GROUPS.pop(base, None)
        _stop(process)


SERVER_GROUPS: dict[str, int] = {}


def server_cpu_seconds(base: str) -> float:
    """CPU seconds (user + system) used so far by every process of the server at `base`."""
    group, total = SERVER_GROUPS[base], 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited meanwhile
        if int(fields[2]) == group:  # pgrp
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM to the server's own process group (uvicorn and its workers), then SIGKILL."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@dataclass
class Load:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    non_2xx: int

    def text(self) -> str:
        return f"{self.rps:,.0f} req/s, p50 {self.p50_ms:.2f} ms, p99 {self.p99_ms:.2f} ms"


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def wrk(url: str, options: Options, headers: dict[str, str] | None = None,
        connections: int | None = None, threads: int = 1,
        scripts: tuple[Path, Path] | None = None) -> Load:  # fmt: skip
    """Warm up, then measure with wrk at fixed concurrency; wrk runs in its own process.

    `scripts`: wrk Lua scripts for the warm-up and the measured run (a POST, or deletes
    that must not repeat across the two runs).
    """
    header_args = [a for k, v in (headers or {}).items() for a in ("-H", f"{k}: {v}")]
    conns = connections or options.connections
    base = ["wrk", f"-t{threads}", f"-c{conns}", "--timeout", "10s", *header_args]
    warm, measured = (["-s", str(s)] for s in scripts) if scripts else ([], [])
    subprocess.run([*base, *warm, f"-d{max(1, round(options.warmup))}s", url], capture_output=True, check=True)
    result = subprocess.run(
        [*base, *measured, "--latency", f"-d{max(1, round(options.duration))}s", url],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    out = result.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    load = Load(rps, p50, p99, requests, errors, int(non_2xx.group(1)) if non_2xx else 0)
    if load.errors or load.non_2xx:
        raise RuntimeError(f"wrk saw errors against {url}:\n{out}")
    return load


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


# The machine.


def machine_info() -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))  # type: ignore[union-attr]
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, AttributeError):
        pass
    versions = {}
    for module in ("litestar", "uvicorn", "sqlalchemy", "PIL", "msgspec", "uvloop", "httptools"):
        try:
            version = __import__(module).__version__
            if hasattr(version, "major"):  # litestar's Version tuple
                version = f"{version.major}.{version.minor}.{version.patch}"
            versions[module] = str(version)
        except Exception:  # noqa: BLE001 (optional modules)
            versions[module] = "absent"
    try:
        import pyvips

        versions["libvips"] = pyvips.version_string() if hasattr(pyvips, "version_string") else (
            f"{pyvips.version(0)}.{pyvips.version(1)}.{pyvips.version(2)}")  # fmt: skip
    except Exception as error:  # noqa: BLE001
        versions["libvips"] = f"absent ({type(error).__name__})"
    wrk_version = "absent"
    if shutil.which("wrk"):
        probe = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
        wrk_version = (probe.stdout + probe.stderr).splitlines()[0].strip()
    load = os.getloadavg()
    return {
        "cpu": f"{cpu}, {os.cpu_count()} cores",
        "memory": mem,
        "os": f"{platform.system()} {platform.release()} ({platform.machine()})",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "libraries": ", ".join(f"{k} {v}" for k, v in versions.items()),
        "wrk": wrk_version,
        "load average at start": f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
    }


def dumps(data: object) -> str:
    return json.dumps(data, indent=2, default=str)
