"""The app under load, cancellation, bad input and file probes, through gradio_client.

Every row of `explorer.ui.limits.BAD_INPUTS` is sent to its endpoint; each must get its message (or
run, and say so), and the app must serve a correct run right after.
"""

from __future__ import annotations

import json
import re
import threading
import zipfile
from pathlib import Path

import httpx
import pytest
from bad_files import bad_file, bad_picture, good_png
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

import app
from explorer.engine.capture import trace
from explorer.engine.runzip import pack
from explorer.ui.common import MAX_FILE_SIZE
from explorer.ui.layout import launch_options
from explorer.ui.limits import BAD_INPUTS, Case
from explorer.ui.tabs import generate as generate_tab

pytestmark = pytest.mark.slow
ROOT = Path(__file__).parents[1]
CHECK = dict(prompt="a large red circle on a blue background", seed=9, steps=1)
BASE = dict(prompt="a red circle", seed=0, steps=2, guidance=7.5, scheduler="ddim")
DEFAULTS = {  # each endpoint's inputs besides the base settings: small and valid
    "/generate": dict(negative_prompt=""),
    "/compare_steps": dict(negative="", steps_list="1, 2"),
    "/scale_embedding": dict(negative="", factors="1", rule="multiply"),
    "/compare_guidance": dict(negative="", scales="1, 2"),
    "/compare_schedulers": dict(negative="", names="ddim", curve="1"),
    "/compare_seeds": dict(negative="", seeds="0"),
    "/grid": dict(negative="", row_axis="steps", row_text="1", col_axis="seed", col_text="0"),
    "/attention": dict(negative_prompt="", token_choice="circle", step_value=1, average=True),
    "/epsilon_or_flow": dict(),
    "/tokens": dict(a="a red circle", b="a blue square"),
    "/similarity": dict(text="a red circle\na blue square"),
    "/image_text": dict(source="Mini dataset (held-out)", count=2, captions_text="", files=None),
    "/norms": dict(text="a red circle\na blue square"),
    "/maps": dict(
        prompts_text="a red circle", seeds_text="0, 1", what="latents", method="pca", map_seed=0
    ),
    "/sketch": dict(sketch=None, upload="good", how="pad", strength=1.0),
    "/strength_sweep": dict(sketch=None, upload="good", how="pad", strengths_text="1"),
    "/forward": dict(upload="good", how="pad", timesteps_text="0, 500"),
    "/vae": dict(upload="good", how="pad", channel="0", scale=0.0),
}
STATUS = {  # which output holds the status text a run's notes go to
    "/generate": 1,
    "/attention": 3,
    "/tokens": 0,
    "/similarity": 0,
    "/image_text": 0,
    "/norms": 0,
    "/maps": 0,
    "/sketch": 2,
    "/strength_sweep": 1,
    "/forward": 0,
    "/vae": 0,
}
FILE_INPUTS = {"upload": "one", "files": "list"}  # picture inputs: "good" is a valid picture


class Engine:
    """Wraps the Generate tab's engine call to see every run it finishes, even abandoned ones."""

    def __init__(self, real):
        self.real, self.done, self.event = real, [], threading.Event()

    def __call__(self, *args):
        out = self.real(*args)
        self.done.append(out)
        self.event.set()
        return out


@pytest.fixture(scope="module")
def served():
    demo, ctx = app.build()
    ctx.pipe()
    engine = Engine(generate_tab._engine)
    generate_tab._engine = engine
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True, **launch_options())
    try:
        yield demo, ctx, engine
    finally:
        generate_tab._engine = engine.real
        demo.close()


def connect(url: str) -> Client:
    """A client that waits as long as the (busy, shared) server needs."""
    return Client(url, verbose=False, httpx_kwargs={"timeout": httpx.Timeout(None)})


@pytest.fixture(scope="module")
def client(served):
    return connect(served[0].local_url)


@pytest.fixture(scope="module")
def reference(client):
    """The check run's image, made before any bad input arrives."""
    return Path(client.predict(**CHECK, api_name="/generate")[0]).read_bytes()


def run_signature(out) -> tuple:
    """What must be identical between a run and its twin: final image, x0 steps, the status."""
    gallery = [Path(item["image"]).read_bytes() for item in out[5]]
    status = out[1].split(" in ")[0]  # without the wall time
    return Path(out[0]).read_bytes(), tuple(gallery), status


# ---- concurrency and cancellation ---------------------------------------------------------

LOAD = [
    dict(prompt="a large red circle on a blue background", seed=1, steps=3, scheduler="ddim"),
    dict(prompt="a small yellow star", seed=2, steps=4, scheduler="euler_a", guidance=5.0),
    dict(prompt="", seed=3, steps=3, scheduler="dpmpp_2m", guidance=1.0),
    dict(prompt="a green triangle, white background", seed=4, steps=3, scheduler="pndm"),
    dict(prompt="blue " * 90, seed=2**40, steps=2, scheduler="lms"),
    dict(prompt="a white cross on a red background", seed=6, steps=4, scheduler="unipc"),
    dict(prompt="a purple square", seed=7, steps=3, scheduler="ddpm", guidance=3.0),
    dict(prompt="an orange circle at the bottom", seed=8, steps=2, scheduler="euler"),
]


def test_concurrent_clients_get_their_serial_results(served, client):
    url = served[0].local_url
    serial = [run_signature(client.predict(**s, api_name="/generate_views")) for s in LOAD]
    results, errors = [None] * len(LOAD), []
    barrier = threading.Barrier(len(LOAD))

    def visitor(i):
        own = connect(url)  # its own session
        barrier.wait()
        try:
            results[i] = run_signature(own.predict(**LOAD[i], api_name="/generate_views"))
        except Exception as e:  # noqa: BLE001 - counted below
            errors.append(e)

    threads = [threading.Thread(target=visitor, args=(i,)) for i in range(len(LOAD))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for i, (got, want) in enumerate(zip(results, serial)):
        assert got == want, f"client {i} ({LOAD[i]}) differs from its serial twin"


def test_a_cancelled_run_stops_and_frees_its_worker(served, client, reference):
    engine = served[2]
    engine.event.clear()
    before = len(engine.done)
    job = client.submit(prompt="a red circle", steps=100, api_name="/generate_views")
    for _ in job:  # the first streamed step: the run is under way
        break
    job.cancel()
    assert engine.event.wait(600), "the abandoned run never ended"
    abandoned = engine.done[before]
    assert abandoned.settings["cancelled"] and abandoned.settings["steps_run"] < 100
    out = client.predict(**CHECK, api_name="/generate")
    assert Path(out[0]).read_bytes() == reference and "Done: 1 step in" in out[1]


# ---- the bad-input table ------------------------------------------------------------------


@pytest.fixture(scope="module")
def saved_run(served, tmp_path_factory) -> Path:
    """A valid saved run, unpacked into a folder, for the bad-file makers to spoil."""
    folder = tmp_path_factory.mktemp("run")
    zipped = pack(trace(served[1].pipe(), "a red circle", steps=2), folder, "run")
    with zipfile.ZipFile(zipped) as z:
        z.extractall(folder / "x")
    return folder / "x" / "run"


def send_raw(client, endpoint: str, inputs: dict):
    """Through gradio's REST API with ASCII-escaped JSON, as a browser sends text that
    gradio_client cannot encode (a lone surrogate); AppError on an error, like the client."""
    api = client.view_api(return_format="dict", print_info=False)
    params = api["named_endpoints"][endpoint]["parameters"]
    data = [inputs.get(p["parameter_name"], p.get("parameter_default")) for p in params]
    url = client.src.rstrip("/") + "/gradio_api/call" + endpoint
    body = json.dumps({"data": data}, ensure_ascii=True)
    with httpx.Client(timeout=None) as http:
        event = http.post(url, content=body, headers={"Content-Type": "application/json"}).json()
        stream = http.get(f"{url}/{event['event_id']}").text
    kind, data = re.findall(r"event: (\w+)\ndata: (.*)", stream)[-1]
    if kind != "complete":
        raise AppError(json.loads(data) if data != "null" else kind)
    return json.loads(data)


def parameters(client, endpoint: str) -> list[str]:
    api = client.view_api(return_format="dict", print_info=False)
    return [p["parameter_name"] for p in api["named_endpoints"][endpoint]["parameters"]]


def with_files(inputs: dict, case: Case, tmp: Path) -> dict:
    """The picture inputs as uploads: "good" a valid picture, the case's bad one where it has
    one."""
    good = tmp / "good.png"
    good.write_bytes(good_png())
    out = dict(inputs)
    for name, kind in FILE_INPUTS.items():
        value = inputs.get(name)
        if case.upload and name in inputs:
            value = [case.upload] if kind == "list" else case.upload
        if value is None:
            continue
        paths = [
            good if v == "good" else bad_picture(v, tmp)
            for v in (value if kind == "list" else [value])
        ]
        files = [handle_file(str(path)) for path in paths]
        out[name] = files if kind == "list" else files[0]
    return out


def send(client, case: Case, run: Path, tmp: Path):
    if case.upload and case.endpoint == "/open_run":
        return client.predict(
            handle_file(str(bad_file(case.upload, run, tmp))), api_name="/open_run"
        )
    names = parameters(client, case.endpoint)
    assert set(case.inputs) <= set(names), (
        f"{case.endpoint} has no input {set(case.inputs) - set(names)}"
    )
    inputs = {**BASE, **DEFAULTS[case.endpoint], **case.inputs}
    inputs = with_files({k: v for k, v in inputs.items() if k in names}, case, tmp)
    if any("\ud800" <= ch <= "\udfff" for v in inputs.values() if isinstance(v, str) for ch in v):
        return send_raw(client, case.endpoint, inputs)
    return client.predict(**inputs, api_name=case.endpoint)


@pytest.mark.parametrize("case", BAD_INPUTS, ids=lambda c: f"{c.endpoint}:{c.sent}")
def test_bad_input_row(client, reference, saved_run, tmp_path, case):
    if case.runs:
        out = send(client, case, saved_run, tmp_path)
        status = out[STATUS[case.endpoint]]
        assert re.search(case.answer, status, re.IGNORECASE), status
        assert "Done" in status or case.endpoint != "/generate"
    else:
        with pytest.raises(AppError, match=case.answer) as info:
            send(client, case, saved_run, tmp_path)
        assert "Traceback" not in str(info.value)
    out = client.predict(**CHECK, api_name="/generate")  # the app still serves a correct run
    assert Path(out[0]).read_bytes() == reference


# ---- the upload size limit (gradio's max_file_size) --------------------------------------


def test_the_app_launches_with_its_stated_upload_limit(served):
    from gradio.utils import _parse_file_size

    assert served[0].max_file_size == _parse_file_size(MAX_FILE_SIZE)


def test_an_upload_over_max_file_size_is_refused_and_the_app_serves_on(tmp_path):
    """The real mechanism (gradio's upload route, set by `launch_options`) with a 64 kB limit,
    so the test need not send 200 MB; the Generate tab alone (its /open_run takes a file)."""
    demo, _ = app.build(tabs=["explorer.ui.tabs.generate"])
    demo.launch(
        prevent_thread_lock=True,
        server_name="127.0.0.1",
        quiet=True,
        **launch_options(max_file_size="64kb"),
    )
    try:
        limit = 64 * 1024
        assert demo.max_file_size == limit
        big = tmp_path / "big.zip"
        big.write_bytes(bytes(limit + 1))
        small = connect(demo.local_url)
        # gradio_client reads the limit from the app's config and refuses before sending...
        with pytest.raises(ValueError, match=f"exceeds the maximum file size of {limit} bytes"):
            small.predict(handle_file(str(big)), api_name="/open_run")
        # ...and the server refuses a client that sends it anyway (as a browser's upload would)
        url = demo.local_url.rstrip("/") + "/gradio_api/upload"
        response = httpx.post(url, files={"files": ("big.zip", big.read_bytes())}, timeout=None)
        assert response.status_code == 413
        assert f"maximum allowed size of {limit} bytes" in response.text
        assert "Traceback" not in response.text
        out = small.predict(**CHECK, api_name="/generate")  # the app serves on
        assert "Done: 1 step in" in out[1]
    finally:
        demo.close()


# ---- files and models ---------------------------------------------------------------------

PROBES = [
    "/etc/passwd",
    "../../../../etc/passwd",
    "..%2F..%2F..%2F..%2Fetc%2Fpasswd",
    "%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "app.py",
    str(ROOT / "app.py"),
    "explorer/engine/models.py",
    str(ROOT / "explorer" / "engine" / "models.py"),
    str(ROOT / "explorer" / "mini" / "model" / "unet" / "config.json"),
    "/proc/self/environ",
]


@pytest.mark.parametrize("path", PROBES)
@pytest.mark.parametrize("route", ["/gradio_api/file=", "/file=", "/gradio_api/file/"])
def test_file_probes_are_refused(served, route, path):
    response = httpx.get(served[0].local_url.rstrip("/") + route + path, follow_redirects=True)
    body = response.text
    assert "root:" not in body and "def load_pipeline" not in body and "argparse" not in body
    assert "cross_attention_dim" not in body and "PATH=" not in body
    assert response.status_code >= 400 or "<html" in body.lower()[:200]


def test_no_endpoint_lets_a_visitor_choose_a_model_or_a_path(client):
    info = client.view_api(return_format="dict", print_info=False)
    for name, endpoint in info["named_endpoints"].items():
        params = {p["parameter_name"] for p in endpoint["parameters"]}
        assert not params & {"model", "device", "path", "folder", "checkpoint"}, name


def test_open_run_refuses_a_server_path(client):
    for path in ["/etc/passwd", str(ROOT / "app.py"), "../../../etc/passwd"]:
        with pytest.raises(AppError) as info:
            client.predict(
                {"path": path, "meta": {"_type": "gradio.FileData"}}, api_name="/open_run"
            )
        assert "root:" not in str(info.value) and "argparse" not in str(info.value)


def test_every_queued_event_has_an_explicit_concurrency_limit(served):
    demo = served[0]
    loose = [
        fn.name
        for fn in demo.fns.values()
        if fn.queue is not False and fn.concurrency_limit == "default"
    ]
    assert loose == []
