"""Maps of high-dimensional points in 2-D: UMAP (McInnes et al. 2018) or PCA.

A Mini latent is 4 x 16 x 16 = 1,024 numbers, an SD 1.x latent 4 x 64 x 64 = 16,384: every step
of a run is one point in that space, a run is a path through it. `trajectory_map` puts the paths
of several runs (prompts x seeds, e.g. `experiments.prompts_by_seeds`) on ONE shared map, so they
can be compared.

- PCA: the plane of largest variance (a linear shadow; distances along it are true distances).
- UMAP: a non-linear map that keeps neighbours near (distances far apart mean little).
  Its first fit in a process compiles numba code (seconds); `start_warm_up` does that once in a
  background thread at app start. Until it is done, and for n <= 3 points (where UMAP fails),
  PCA stands in and the result says so in `note`.
Both are deterministic: PCA has a sign convention, UMAP gets a fixed `random_state`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from explorer.inputs.errors import VisitorError

log = logging.getLogger("explorer.studies.trajectories")

UMAP_MIN_POINTS = 4  # below this UMAP fails (n = 2 always, n = 3 with spectral init)
SPECTRAL_MIN_POINTS = 16  # below this UMAP starts from a random layout instead
DEFAULT_SEED = 0
_ready = threading.Event()
_started = threading.Lock()
_thread: threading.Thread | None = None
warm_up_error: str | None = None  # why the warm-up failed, if it did
IMPORT_TRIES = 3  # Python breaks a cross-thread import deadlock by raising in one thread


def _umap(n: int, seed: int):
    import umap

    return umap.UMAP(
        n_components=2,
        n_neighbors=max(2, min(15, n - 1)),
        min_dist=0.1,
        n_epochs=200,  # umap's choice for large data; its 500 for small n costs 2.5x, looks alike
        init="spectral" if n >= SPECTRAL_MIN_POINTS else "random",
        random_state=seed,  # deterministic (and so single-threaded)
        n_jobs=1,
    )


def lower_priority() -> None:
    """Make the calling thread yield the CPU to every other one (Linux: nice 19 for this thread
    only), so a background warm-up never slows a visitor's run down."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
    except (AttributeError, OSError):  # not Linux, or not allowed: run at normal priority
        pass


def warm_up() -> None:
    """Import umap and fit once (compiles its numba code); sets `umap_ready()`."""
    global warm_up_error
    start = time.perf_counter()
    try:
        for attempt in range(IMPORT_TRIES):
            try:
                rng = np.random.default_rng(0)
                for n in (SPECTRAL_MIN_POINTS + 48, UMAP_MIN_POINTS + 4):  # both init paths
                    points = rng.normal(size=(n, 32)).astype(np.float32)  # (n, 32)
                    _umap(n, DEFAULT_SEED).fit_transform(points)
                break
            except RuntimeError as e:  # an import racing the server's own (seen: narwhals)
                if type(e).__name__ != "_DeadlockError" or attempt + 1 == IMPORT_TRIES:
                    raise
                log.warning("UMAP warm-up: %s; importing again", e)
                time.sleep(0.5)
    except Exception as e:  # noqa: BLE001 - a failed warm-up leaves PCA in place, said so
        warm_up_error = f"{type(e).__name__}: {e}"
        log.exception("UMAP warm-up failed; maps use PCA")
        return
    _ready.set()
    log.info("UMAP warm-up done in %.1f s", time.perf_counter() - start)


def _warm_up_behind() -> None:
    lower_priority()
    warm_up()


def start_warm_up() -> threading.Thread:
    """Start the warm-up in a daemon thread (once per process); returns that thread."""
    global _thread
    with _started:
        if _thread is None:
            _thread = threading.Thread(target=_warm_up_behind, name="umap-warm-up", daemon=True)
            _thread.start()
        return _thread


def umap_ready() -> bool:
    return _ready.is_set()


@dataclass
class Projection:
    """2-D coordinates of n points, how they were made, and why if not as asked."""

    xy: np.ndarray  # (n, 2)
    method: str  # "umap" | "pca" (what was actually used)
    note: str  # "" or a sentence: why PCA stood in for UMAP
    explained: tuple[float, float] | None = None  # PCA: share of variance on each axis


def pca_2d(x: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
    """The first two principal components of (n, d) points -> ((n, 2), variance shares).

    Signs are fixed (each axis' largest loading is positive), so the map never flips between
    calls. Fewer than 2 non-trivial directions give zeros on the missing axis.
    """
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)  # (n, d)
    centred = x - x.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)  # vt: (k, d)
    vt = vt[:2]
    signs = np.sign(vt[np.arange(len(vt)), np.abs(vt).argmax(axis=1)])
    vt = vt * np.where(signs == 0, 1.0, signs)[:, None]
    xy = centred @ vt.T  # (n, <=2)
    if xy.shape[1] < 2:
        xy = np.pad(xy, ((0, 0), (0, 2 - xy.shape[1])))
    total = float((s**2).sum())
    shares = [(float(v**2) / total if total > 0 else 0.0) for v in s[:2]] + [0.0, 0.0]
    return xy, (shares[0], shares[1])


def project(
    points: np.ndarray, method: str = "umap", seed: int = DEFAULT_SEED, wait: bool = False
) -> Projection:
    """(n, ...) points -> 2-D. `method` "umap" or "pca"; PCA stands in for UMAP when n <= 3, or
    while UMAP is still warming up (unless `wait`, which blocks until it is ready)."""
    if method not in ("umap", "pca"):
        raise VisitorError(f"method must be 'umap' or 'pca', got {method!r}")
    x = np.asarray(points, dtype=np.float32).reshape(len(points), -1)  # (n, d)
    if len(x) == 0:
        raise VisitorError("nothing to map: no points")
    note = ""
    if method == "umap":
        if len(x) < UMAP_MIN_POINTS:
            note = f"PCA shown: UMAP needs at least {UMAP_MIN_POINTS} points, there are {len(x)}."
        elif warm_up_error is not None:
            note = f"PCA shown: UMAP is unavailable here ({warm_up_error})."
        elif not umap_ready() and not wait:
            start_warm_up()
            note = "PCA shown: UMAP is still warming up (compiling, once); ask again in a moment."
        else:
            if wait:
                start_warm_up().join()
            if umap_ready():
                xy = _umap(len(x), seed).fit_transform(x)  # (n, 2)
                return Projection(np.asarray(xy, dtype=np.float64), "umap", "")
            note = f"PCA shown: UMAP is unavailable here ({warm_up_error})."
    xy, shares = pca_2d(x)
    return Projection(xy, "pca", note, shares)


@dataclass
class TrajectoryMap:
    """Several runs' paths on one shared 2-D map."""

    labels: list[str]  # one per run
    paths: list[np.ndarray]  # per run (S, 2): one point per step
    projection: Projection  # of all the points together (method, note)


def trajectory_map(
    runs: Sequence[np.ndarray],
    labels: Sequence[str],
    method: str = "umap",
    seed: int = DEFAULT_SEED,
    wait: bool = False,
) -> TrajectoryMap:
    """Map every step of every run together; `runs[r]` is (S_r, ...) (e.g. latents
    (T+1, C, h, w))."""
    if len(runs) != len(labels) or not runs:
        raise VisitorError("give one label per run, and at least one run")
    flat = [np.asarray(r, dtype=np.float32).reshape(len(r), -1) for r in runs]  # (S_r, d)
    if len({f.shape[1] for f in flat}) != 1:
        raise VisitorError("runs must have latents of the same size to share one map")
    proj = project(np.concatenate(flat), method, seed, wait)  # (sum S_r, 2)
    ends = np.cumsum([len(f) for f in flat])[:-1]
    return TrajectoryMap(list(labels), np.split(proj.xy, ends), proj)


@dataclass
class MapRuns:
    """The runs behind a trajectory map: one per (prompt, seed), and their map."""

    traces: list  # list[Trace], prompt-major: prompts[0] with every seed, then prompts[1] ...
    map: TrajectoryMap
    what: str  # "latents" (x_t, T+1 points a run) or "x0" (predicted x_0, T points)


def map_runs(
    traces: Sequence,
    *,
    what: str = "latents",
    method: str = "umap",
    map_seed: int = DEFAULT_SEED,
) -> MapRuns:
    """Map all the steps of the given runs together (e.g. `experiments.prompts_by_seeds`'s).

    Each run is labelled by its prompt and seed; `what` picks its points: "latents" or "x0"."""
    if what not in ("latents", "x0"):
        raise VisitorError(f"what must be 'latents' or 'x0', got {what!r}")
    traces = list(traces)
    labels = [f"{t.settings['prompt'][:32]} · seed {t.settings['seed']}" for t in traces]
    stacks = [t.latents.numpy() if what == "latents" else t.x0_pred.numpy() for t in traces]
    return MapRuns(traces, trajectory_map(stacks, labels, method, map_seed), what)
