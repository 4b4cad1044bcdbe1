"""Load test of the web app: 20 concurrent clients × 50 queries on 127.0.0.1.

Run from the project root. Starts the app (``python -m fashiongan.search.app``) on a free
loopback port, unless ``--url`` points at one already running, then every client sends its
queries to the app's ``/search`` endpoint through the Gradio queue (the same service call as
the Chat tab) with ``gradio_client``. One query in 20 is empty on purpose: the app must answer it with its
one-line message, not fail. Bounded: each request times out after ``--request-timeout`` s and
the whole run stops at ``--max-seconds``. Afterwards the app must still answer a query and
serve its page. Reports throughput, latency percentiles and errors (target 0).

    python benchmarks/app_load.py [--clients 20] [--queries 50]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from _common import save
from search_latency import FREE_FORM

QUERIES = FREE_FORM


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


def client_run(url: str, client_id: int, n: int, deadline: float, timeout_s: float) -> dict:
    """One client: its own gradio_client connection, ``n`` queries in a row."""
    from gradio_client import Client

    latencies, errors, answered_bad = [], [], 0
    client = Client(url, verbose=False, download_files=False, analytics_enabled=False)
    for i in range(n):
        if time.monotonic() > deadline:
            errors.append("stopped: run deadline reached")
            break
        empty = (client_id * n + i) % 20 == 19
        text = "" if empty else QUERIES[(client_id + i) % len(QUERIES)]
        started = time.perf_counter()
        try:
            reply = client.submit(text, 10, i, api_name="/search").result(timeout=timeout_s)
        except Exception as err:  # a failed request is the thing being measured
            errors.append(f"{type(err).__name__}: {str(err)[:120]}")
            continue
        latencies.append((time.perf_counter() - started) * 1000)
        if empty and "error" in reply:
            answered_bad += 1
        elif empty or "error" in reply or len(reply.get("results", [])) != 10:
            errors.append(f"unexpected reply to {text!r}: {str(reply)[:120]}")
    client.close()
    return {"latencies": latencies, "errors": errors, "answered_bad_input": answered_bad}


def still_answers(url: str) -> bool:
    from gradio_client import Client

    client = Client(url, verbose=False, download_files=False, analytics_enabled=False)
    reply = client.predict("a dark ankle boot", 10, 0, api_name="/search")
    with urllib.request.urlopen(url, timeout=10) as response:
        page_ok = response.status == 200
    client.close()
    return page_ok and len(reply.get("results", [])) == 10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", help="an app already running (default: start one here)")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--queries", type=int, default=50, help="per client")
    parser.add_argument("--request-timeout", type=float, default=120.0)
    parser.add_argument("--max-seconds", type=float, default=900.0)
    args = parser.parse_args()

    process = None
    log_tail: list[str] = []
    url = args.url
    if url is None:
        port = free_port()
        url = f"http://127.0.0.1:{port}/"
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "fashiongan.search.app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        threading.Thread(target=drain, args=(process.stderr, log_tail), daemon=True).start()
    try:
        try:
            wait_until_up(url, process, timeout_s=180)
        except (RuntimeError, TimeoutError) as err:
            sys.exit(f"{err}\n{''.join(log_tail[-15:])}")
        deadline = time.monotonic() + args.max_seconds
        started = time.perf_counter()
        with ThreadPoolExecutor(args.clients) as pool:
            runs = list(
                pool.map(
                    lambda c: client_run(url, c, args.queries, deadline, args.request_timeout),
                    range(args.clients),
                )
            )
        wall_s = time.perf_counter() - started
        latencies = [ms for run in runs for ms in run["latencies"]]
        errors = [e for run in runs for e in run["errors"]]
        answered = len(latencies)
        alive = still_answers(url)
    finally:
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
    save(
        "app_load",
        {
            "url_host": "127.0.0.1",
            "clients": args.clients,
            "queries_per_client": args.queries,
            "requests": args.clients * args.queries,
            "answered": answered,
            "errors": len(errors),
            "error_examples": errors[:5],
            "bad_input_answered_with_message": sum(r["answered_bad_input"] for r in runs),
            "wall_s": round(wall_s, 2),
            "throughput_qps": round(answered / wall_s, 2),
            "latency_p50_ms": round(float(np.percentile(latencies, 50)), 1) if latencies else None,
            "latency_p95_ms": round(float(np.percentile(latencies, 95)), 1) if latencies else None,
            "answers_after_load": alive,
            "load_average_1m": round(os.getloadavg()[0], 2),
        },
    )
    if errors or not alive:
        sys.exit(1)


if __name__ == "__main__":
    main()
