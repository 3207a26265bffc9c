"""Load test: N /generate requests over M concurrent clients, every result checked against its
serial twin.

    python benchmarks/load.py                       # 8 clients x 4 runs, 10 steps, own server
    python benchmarks/load.py --clients 4 --runs 2 --steps 5
    python benchmarks/load.py --url http://127.0.0.1:7860/   # a running app, loopback only

Bounded and self-stopping: at most --clients x --runs requests (each capped at 64), and nothing is
started after --max-seconds; a request still running then is counted as an error. Only a loopback
address is accepted. Prints p50/p95 latency, throughput, errors and mismatches, and the ratio of
the concurrent throughput to the serial one measured in the same run (the CPU is shared).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import common  # noqa: F401 -- puts the repository on sys.path

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
PROMPTS = [
    "a large red circle on a blue background",
    "a small yellow star in the top left on a black background",
    "a green triangle, white background, center",
    "a purple background with a large orange square at the bottom right",
    "",
    "a large white cross on a red background",
]
SCHEDULERS = ["ddim", "euler", "dpmpp_2m", "unipc", "pndm", "euler_a", "lms", "ddpm"]


def settings(i: int, steps: int) -> dict:
    """Request i's settings: every request differs from its neighbours."""
    return dict(
        prompt=PROMPTS[i % len(PROMPTS)],
        seed=1000 + i,
        steps=steps,
        guidance=[7.5, 1.0, 4.0][i % 3],
        scheduler=SCHEDULERS[i % len(SCHEDULERS)],
    )


def signature(out) -> tuple:
    """Final image bytes, every x0 step's bytes, and the status without the wall time."""
    gallery = tuple(Path(item["image"]).read_bytes() for item in out[5])
    return Path(out[0]).read_bytes(), gallery, out[1].split(" in ")[0]


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))] if xs else float("nan")


def serve():
    """The app on a free loopback port, in this process."""
    import app
    from explorer.ui.layout import launch_options

    app.set_threads(None)
    demo, ctx = app.build()
    ctx.pipe()
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True, **launch_options())
    return demo


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--runs", type=int, default=4, help="requests per client")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--max-seconds", type=float, default=900.0)
    p.add_argument("--url", default=None, help="a running app on this machine (default: start one)")
    args = p.parse_args()
    if not (1 <= args.clients <= 64 and 1 <= args.runs <= 64 and args.clients * args.runs <= 512):
        p.error("--clients and --runs must be 1..64 (512 requests at most)")
    if args.url and urlparse(args.url).hostname not in LOOPBACK:
        p.error("loopback only: --url must point at 127.0.0.1, localhost or ::1")
    return args


def run_serial(connect, n: int, steps: int) -> tuple[list[tuple], list[float]]:
    """The serial twins, one request at a time: (signatures, seconds per request)."""
    solo = connect()
    solo.predict(**settings(0, 1), api_name="/generate")  # warm-up, not counted
    twins, serial_s = [], []
    for i in range(n):
        t0 = time.perf_counter()
        twins.append(signature(solo.predict(**settings(i, steps), api_name="/generate")))
        serial_s.append(time.perf_counter() - t0)
    return twins, serial_s


def run_concurrent(connect, twins: list[tuple], args, deadline: float) -> dict:
    """The same requests from M clients at once (client c sends c, c+M, c+2M, ...):
    {latency, errors, mismatches, wall}."""
    n = len(twins)
    latency, errors, mismatches = [], [], []
    lock = threading.Lock()
    barrier = threading.Barrier(args.clients)

    def visitor(c: int) -> None:
        own = connect()
        barrier.wait()
        for i in range(c, n, args.clients):
            left = deadline - time.monotonic()
            if left <= 0:
                with lock:
                    errors.append(f"request {i}: not started (time is up)")
                continue
            t0 = time.perf_counter()
            try:
                job = own.submit(**settings(i, args.steps), api_name="/generate")
                got = signature(job.result(timeout=left))
            except Exception as e:  # noqa: BLE001 - counted and reported
                with lock:
                    errors.append(f"request {i}: {type(e).__name__}: {e}")
                continue
            with lock:
                latency.append(time.perf_counter() - t0)
                if got != twins[i]:
                    mismatches.append(i)

    start = time.perf_counter()
    threads = [
        threading.Thread(target=visitor, args=(c,), daemon=True) for c in range(args.clients)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()) + 5)
    wall = time.perf_counter() - start
    return dict(latency=latency, errors=errors, mismatches=mismatches, wall=wall)


def report(args, serial_s: list[float], got: dict) -> int:
    """Print the figures; 0 when every request came back, on time and equal to its twin."""
    n, latency, wall = len(serial_s), got["latency"], got["wall"]
    errors, mismatches = got["errors"], got["mismatches"]
    ok = len(latency)
    serial_rate = n / sum(serial_s)
    rate = ok / wall if wall else float("nan")
    print(f"{args.clients} clients x {args.runs} runs = {n} requests, {args.steps} steps each")
    print(f"serial:     median {statistics.median(serial_s):.2f} s/run, {serial_rate:.2f} runs/s")
    print(
        f"concurrent: p50 {percentile(latency, 0.5):.2f} s, p95 {percentile(latency, 0.95):.2f} s, "
        f"{rate:.2f} runs/s ({rate / serial_rate:.2f}x serial) over {wall:.1f} s"
    )
    print(f"errors: {len(errors)}; results different from their serial twin: {len(mismatches)}")
    for e in errors[:10]:
        print("  ", e)
    return 0 if not errors and not mismatches and ok == n else 1


def main() -> int:
    args = parse_args()
    import httpx
    from gradio_client import Client

    demo = None if args.url else serve()
    url = args.url or demo.local_url

    def connect():
        return Client(url, verbose=False, httpx_kwargs={"timeout": httpx.Timeout(None)})

    deadline = time.monotonic() + args.max_seconds
    try:
        twins, serial_s = run_serial(connect, args.clients * args.runs, args.steps)
        got = run_concurrent(connect, twins, args, deadline)
    finally:
        if demo is not None:
            demo.close()
    return report(args, serial_s, got)


if __name__ == "__main__":
    sys.exit(main())
