"""Load test of the web app on 127.0.0.1: a fixed-rate open-loop load on both search paths.

Run from the project root. Starts the app (``python -m fashiongan.search.app``) on a free
loopback port, unless ``--url`` points at one already running on 127.0.0.1, then offers the
same load to both JSON paths, one after the other:

- ``gradio``: the ``/search`` API through Gradio's queue (one request at a time), with
  ``gradio_client``, for ``--old-seconds``;
- ``api``: ``POST /api/search`` (micro-batched), plain HTTP keep-alive, for ``--seconds``.

Open loop: request i is due at ``start + i / rate`` whatever the answers before it did;
``--clients`` connections send them, and each latency counts from the due time, so time spent
waiting for a free connection is in it. Requests still unsent when the phase ends are counted
as ``unsent``, not dropped silently. One query in 20 is empty on purpose: the app must answer it
with its one-line message (400 / ``{"error"}``), which counts as answered, not as an error.
While the ``api`` phase runs, the UI is probed every ``--probe-every`` s (its page, and a query
through Gradio's queue). The server's resident memory is sampled twice a second (psutil, else
/proc). Bounded: each request times out after ``--request-timeout`` s, each phase ends
``--request-timeout`` s after its last due time, and the run stops at ``--max-seconds``.

    python benchmarks/app_load.py [--rate 60] [--seconds 120] [--old-seconds 20] [--clients 20]
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from _common import save
from search_latency import FREE_FORM

QUERIES = FREE_FORM
K = 10


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def drain(stream, tail: list[str]) -> None:
    """Read the app's log so it never blocks on a full pipe; keep the last 40 lines."""
    for line in stream:
        tail.append(line)
        del tail[:-40]


def wait_until_up(url: str, process: subprocess.Popen | None, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the app exited with code {process.returncode} while starting")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"the app did not answer on {url} within {timeout_s:.0f} s")


def query(i: int) -> tuple[str, int]:
    """The i-th request's text (empty for one in 20) and seed."""
    return ("" if i % 20 == 19 else QUERIES[i % len(QUERIES)]), i


# --- the two clients: one sender per connection, (i) → None or an error line ---------------------
def api_sender(url: str, timeout_s: float) -> Callable[[int], str | None]:
    """``POST /api/search`` over one keep-alive connection."""
    address = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=timeout_s)

    def send(i: int) -> str | None:
        text, seed = query(i)
        body = json.dumps({"text": text, "k": K, "seed": seed})
        try:
            connection.request("POST", "/api/search", body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            status, reply = response.status, json.loads(response.read())
        except (OSError, http.client.HTTPException, ValueError) as err:
            connection.close()  # reconnects on the next request
            return f"{type(err).__name__}: {str(err)[:120]}"
        return check_reply(text, reply, status)

    return send


def gradio_sender(url: str, timeout_s: float) -> Callable[[int], str | None]:
    """Gradio's ``/search`` API through its queue, with one ``gradio_client`` connection."""
    from gradio_client import Client

    client = Client(url, verbose=False, download_files=False, analytics_enabled=False)

    def send(i: int) -> str | None:
        text, seed = query(i)
        try:
            reply = client.submit(text, K, seed, api_name="/search").result(timeout=timeout_s)
        except Exception as err:  # a failed request is the thing being measured
            return f"{type(err).__name__}: {str(err)[:120]}"
        return check_reply(text, reply, 400 if "error" in reply else 200)

    return send


def check_reply(text: str, reply: dict, status: int) -> str | None:
    """None when the reply is what the query deserves: 10 results, or the empty text's message."""
    if not text:
        return None if status == 400 and reply.get("field") == "text" else f"bad: {reply}"[:160]
    if status != 200 or len(reply.get("results", [])) != K:
        return f"unexpected reply ({status}) to {text!r}: {str(reply)[:120]}"
    return None


# --- the load ------------------------------------------------------------------------------------
def open_loop(senders: list[Callable], rate: float, seconds: float, timeout_s: float) -> dict:
    """Offer ``rate`` requests/s for ``seconds`` through the ``senders`` (one per connection)."""
    total = int(rate * seconds)
    counter = itertools.count()  # next() is atomic under the GIL: each index is sent once
    start = time.monotonic() + 0.2
    stop_sending = start + seconds
    latencies, errors, unsent, finished = [], [], [0], [start]

    def connection(send: Callable[[int], str | None]) -> None:
        while (i := next(counter)) < total:
            due = start + i / rate
            now = time.monotonic()
            if now > stop_sending:
                unsent[0] += 1
                continue
            time.sleep(max(0.0, due - now))
            error = send(i)
            done = time.monotonic()
            latencies.append((done - due) * 1000)
            finished[0] = max(finished[0], done)
            if error:
                errors.append(error)

    with ThreadPoolExecutor(len(senders)) as pool:
        list(pool.map(connection, senders))
    wall = finished[0] - start
    answered = len(latencies) - len(errors)
    return {
        "offered_rate_qps": rate,
        "offered": total,
        "sent": len(latencies),
        "unsent": unsent[0],
        "answered": answered,
        "errors": len(errors),
        "error_examples": errors[:5],
        "wall_s": round(wall, 2),
        "throughput_qps": round(answered / wall, 2) if wall > 0 else None,
        **percentiles(latencies),
    }


def percentiles(latencies: list[float]) -> dict[str, float | None]:
    names = ("latency_p50_ms", "latency_p95_ms", "latency_p99_ms")
    if not latencies:
        return dict.fromkeys(names)
    values = np.percentile(latencies, [50, 95, 99])
    return {name: round(float(v), 1) for name, v in zip(names, values, strict=True)}


# --- what runs beside the load: memory and the UI --------------------------------------------------
def rss_bytes(pid: int) -> int | None:
    """The process's resident memory (psutil when installed, else /proc)."""
    try:
        import psutil

        return psutil.Process(pid).memory_info().rss
    except ImportError:
        with open(f"/proc/{pid}/status") as status:
            line = next(x for x in status if x.startswith("VmRSS:"))
        return int(line.split()[1]) * 1024
    except Exception:  # the process is gone
        return None


class Sampler(threading.Thread):
    """Calls ``probe`` every ``every_s`` seconds until stopped, keeping (time, value) pairs."""

    def __init__(self, probe: Callable[[], object], every_s: float) -> None:
        super().__init__(daemon=True)
        self.probe, self.every_s = probe, every_s
        self.samples: list[tuple[float, object]] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            self.samples.append((time.monotonic(), self.probe()))
            self.stopped.wait(self.every_s)

    def between(self, start: float, end: float) -> list:
        return [value for at, value in self.samples if start <= at <= end and value is not None]


def memory_figures(rss: Sampler, start: float, end: float) -> dict[str, float | None]:
    """Resident memory over a phase: at its start, its peak in each half, its end (MiB)."""
    middle = (start + end) / 2
    mib = 1024 * 1024

    def peak(values: list) -> float | None:
        return round(max(values) / mib, 1) if values else None

    values = rss.between(start, end)
    return {
        "rss_start_mib": round(values[0] / mib, 1) if values else None,
        "rss_peak_first_half_mib": peak(rss.between(start, middle)),
        "rss_peak_second_half_mib": peak(rss.between(middle, end)),
        "rss_end_mib": round(values[-1] / mib, 1) if values else None,
    }


def ui_probe(url: str, timeout_s: float) -> Callable[[], dict]:
    """One UI check: the page loads and a query through Gradio's queue answers (with times)."""
    ask = gradio_sender(url, timeout_s)

    def probe() -> dict:
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as response:
                page_ok = response.status == 200
        except OSError:
            page_ok = False
        page_ms = (time.perf_counter() - started) * 1000
        error = ask(0)
        return {"page_ok": page_ok, "page_ms": page_ms, "query_ok": error is None,
                "query_ms": (time.perf_counter() - started) * 1000 - page_ms}  # fmt: skip

    return probe


def ui_figures(probes: list[dict]) -> dict:
    return {
        "ui_probes": len(probes),
        "ui_page_ok": sum(p["page_ok"] for p in probes),
        "ui_query_ok": sum(p["query_ok"] for p in probes),
        "ui_page_max_ms": round(max((p["page_ms"] for p in probes), default=0), 1),
        "ui_query_max_ms": round(max((p["query_ms"] for p in probes), default=0), 1),
    }


# --- the run -------------------------------------------------------------------------------------
def start_app() -> tuple[str, subprocess.Popen, list[str]]:
    """The app on a free loopback port, its log drained into a tail."""
    port = free_port()
    command = [sys.executable, "-m", "fashiongan.search.app", "--host", "127.0.0.1"]
    process = subprocess.Popen(
        [*command, "--port", str(port)],
        env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    tail: list[str] = []
    threading.Thread(target=drain, args=(process.stderr, tail), daemon=True).start()
    return f"http://127.0.0.1:{port}/", process, tail


def run_phases(url: str, pid: int | None, args: argparse.Namespace) -> dict:
    """Warm up, then the gradio phase, then the api phase with the UI probed beside it."""
    warm = api_sender(url, args.request_timeout)
    for i in range(len(QUERIES)):  # the text caches filled once, for both paths alike
        warm(i)
    rss = Sampler(lambda: None if pid is None else rss_bytes(pid), 0.5)
    rss.start()
    phases = {}
    for name, make, seconds in (
        ("gradio", gradio_sender, args.old_seconds),
        ("api", api_sender, args.seconds),
    ):
        senders = [make(url, args.request_timeout) for _ in range(args.clients)]
        ui = Sampler(ui_probe(url, args.request_timeout), args.probe_every)
        started = time.monotonic()
        if name == "api":
            ui.start()
        figures = open_loop(senders, args.rate, seconds, args.request_timeout)
        ui.stopped.set()
        phases[name] = {**figures, **memory_figures(rss, started, time.monotonic())}
        if name == "api":
            ui.join()
            phases[name].update(ui_figures([v for _, v in ui.samples]))
    rss.stopped.set()
    return phases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", help="an app already running on 127.0.0.1 (default: start one)")
    parser.add_argument("--rate", type=float, default=60.0, help="offered requests per second")
    parser.add_argument("--seconds", type=float, default=120.0, help="the api phase's length")
    parser.add_argument("--old-seconds", type=float, default=20.0, help="the gradio phase's")
    parser.add_argument("--clients", type=int, default=20, help="connections per phase")
    parser.add_argument("--probe-every", type=float, default=5.0, help="UI probe period, s")
    parser.add_argument("--request-timeout", type=float, default=30.0)
    parser.add_argument("--max-seconds", type=float, default=600.0)
    args = parser.parse_args()
    if args.url and urllib.parse.urlsplit(args.url).hostname not in ("127.0.0.1", "localhost"):
        sys.exit("--url must be on 127.0.0.1: this benchmark loads loopback only")
    if args.seconds + args.old_seconds + 2 * args.request_timeout + 60 > args.max_seconds:
        sys.exit("--seconds and --old-seconds do not fit in --max-seconds")
    load_before = os.getloadavg()
    url, process, tail = (args.url, None, []) if args.url else start_app()
    watchdog = threading.Timer(args.max_seconds, give_up, args=(process, args.max_seconds))
    watchdog.daemon = True
    watchdog.start()
    try:
        try:
            wait_until_up(url, process, timeout_s=180)
        except (RuntimeError, TimeoutError) as err:
            sys.exit(f"{err}\n{''.join(tail[-15:])}")
        phases = run_phases(url, None if process is None else process.pid, args)
    finally:
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
    report(args, phases, load_before, os.getloadavg())
    api = phases["api"]
    if (
        api["errors"]
        or api["ui_query_ok"] < api["ui_probes"]
        or api["ui_page_ok"] < api["ui_probes"]
    ):
        sys.exit(1)


def give_up(process: subprocess.Popen | None, seconds: float) -> None:
    """The whole run's bound: stop the app and exit when it is reached."""
    if process is not None:
        process.kill()
    print(f"app_load: stopped after --max-seconds {seconds:.0f}", file=sys.stderr)
    os._exit(3)


def report(args, phases: dict, load_before: tuple, load_after: tuple) -> None:
    save(
        "app_load",
        {
            "url_host": "127.0.0.1",
            "clients": args.clients,
            "offered_rate_qps": args.rate,
            "request_timeout_s": args.request_timeout,
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in load_after],
            "phases": phases,
        },
    )


if __name__ == "__main__":
    main()
