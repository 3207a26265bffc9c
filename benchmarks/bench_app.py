"""The web app's speed as a visitor sees it, through gradio_client; medians over rounds.

    python benchmarks/bench_app.py [--rounds 5] [--starts 3] [--steps 25] [--threads N]

Measures, against `python app.py` started here as a subprocess on a free loopback port:
  ready      spawn of `python app.py` until its page answers HTTP 200   (bar: <= 15 s)
  first      submit of /generate until the first streamed step arrives  (bar: <= 0.5 s)
  whole      a whole run of --steps steps with the full VAE decode      (bar: <= 1.5 s)
The server is stopped at the end (and on Ctrl-C). Loopback only; nothing is downloaded.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROMPT = "a large red circle on a blue background"
BARS = {"ready": 15.0, "first": 0.5, "whole": 1.5}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(port: int, threads: int | None, timeout: float = 300) -> tuple[subprocess.Popen, float]:
    """Start the app; return (process, seconds until it served its page)."""
    cmd = [sys.executable, "app.py", "--port", str(port)]
    if threads:
        cmd += ["--threads", str(threads)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    while time.perf_counter() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"app.py exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return proc, time.perf_counter() - t0
        except OSError:
            time.sleep(0.05)
    proc.terminate()
    raise RuntimeError(f"app.py not ready after {timeout} s")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


def first_step(client, steps: int) -> float:
    """Seconds from submit to the first streamed step update."""
    t0 = time.perf_counter()
    job = client.submit(prompt=PROMPT, steps=steps, api_name="/generate")
    for update in job:
        if len(update) > 1 and re.search(r"Step \*\*\d+ of", str(update[1])):
            elapsed = time.perf_counter() - t0
            job.result()  # let it finish before the next round
            return elapsed
    raise RuntimeError("no streamed step arrived")


def whole_run(client, steps: int, seed: int) -> float:
    t0 = time.perf_counter()
    out = client.predict(prompt=PROMPT, steps=steps, seed=seed, api_name="/generate")
    elapsed = time.perf_counter() - t0
    if "Done" not in str(out[1]):
        raise RuntimeError(f"run did not finish: {out[1]!r}")
    return elapsed


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=5, help="runs per request measurement")
    p.add_argument("--starts", type=int, default=3, help="app start-ups to time")
    p.add_argument("--steps", type=int, default=25)
    p.add_argument("--threads", type=int, default=None, help="passed to app.py --threads")
    args = p.parse_args()
    from gradio_client import Client

    results: dict[str, list[float]] = {"ready": [], "first": [], "whole": []}
    for _ in range(args.starts - 1):  # extra start-ups, timed and stopped
        proc, ready = start(free_port(), args.threads)
        results["ready"].append(ready)
        stop(proc)
    port = free_port()
    proc, ready = start(port, args.threads)
    results["ready"].append(ready)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        whole_run(client, args.steps, seed=0)  # warm: first-call set-up is not what we measure
        for i in range(args.rounds):
            results["first"].append(first_step(client, args.steps))
            results["whole"].append(whole_run(client, args.steps, seed=i + 1))
    finally:
        stop(proc)
    print(f"Diffusion Explorer app, {args.steps} steps, CPU cores: {os.cpu_count()}, medians:")
    for name, values in results.items():
        med = statistics.median(values)
        verdict = "ok" if med <= BARS[name] else "OVER"
        runs = ", ".join(f"{v:.2f}" for v in values)
        print(f"  {name:6s} {med:7.3f} s  (bar {BARS[name]:g} s: {verdict})  [{runs}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
