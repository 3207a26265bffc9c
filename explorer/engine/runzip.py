"""A saved run as one zip file, for downloading and uploading through the web app.

The zip holds exactly the files of a trace folder (`Trace.save`): trace.json,
tensors.safetensors, image.png and optionally init_image.png, at its root or inside one folder.
Opening one never trusts it: the member names, their count and their sizes are checked before
anything is extracted, then `Trace.load` checks the schema. Nothing is ever unpickled.
"""

from __future__ import annotations

import tempfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from explorer.engine.tracefile import Trace

ALLOWED = {"trace.json", "tensors.safetensors", "image.png", "init_image.png"}
MAX_ZIP_BYTES = 200 * 2**20  # the upload itself
MAX_UNPACKED_BYTES = 400 * 2**20  # all members, uncompressed
MAX_RATIO = 200  # uncompressed / compressed per member: more is a zip bomb


class RunFileError(ValueError):
    """An uploaded run that cannot be opened, with a message saying why."""


def pack(trace: Trace, folder: str | Path, name: str = "run") -> Path:
    """Save `trace` and zip it as `folder/name.zip` (members inside `name/`); returns the zip."""
    folder = Path(folder)
    saved = trace.save(folder / name)
    out = folder / f"{name}.zip"
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for f in sorted(saved.iterdir()):
            if f.name in ALLOWED:
                z.write(f, f"{name}/{f.name}")
    return out


def _members(z: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    """Checked members by file name: known names only, at most one folder deep, sane sizes."""
    infos = [i for i in z.infolist() if not i.is_dir()]
    if not infos:
        raise RunFileError("the zip is empty: upload a run saved with 'Save run'")
    members: dict[str, zipfile.ZipInfo] = {}
    total = 0
    for info in infos:
        path = PurePosixPath(info.filename.replace("\\", "/"))
        if path.is_absolute() or ".." in path.parts or len(path.parts) > 2:
            raise RunFileError(f"unexpected path {info.filename!r} in the zip: not a saved run")
        if path.name not in ALLOWED:
            raise RunFileError(
                f"unexpected file {info.filename!r} in the zip; a saved run holds only "
                f"{', '.join(sorted(ALLOWED))}"
            )
        if path.name in members:
            raise RunFileError(f"the zip holds {path.name} twice: not a saved run")
        total += info.file_size
        if total > MAX_UNPACKED_BYTES:
            raise RunFileError(f"the run unpacks to more than {MAX_UNPACKED_BYTES // 2**20} MB")
        if info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise RunFileError(f"{info.filename!r} is compressed suspiciously well: refused")
        members[path.name] = info
    if "trace.json" not in members or "tensors.safetensors" not in members:
        raise RunFileError("the zip has no trace.json and tensors.safetensors: not a saved run")
    return members


def unpack(path: str | Path) -> Trace:
    """Open an uploaded run zip; `RunFileError` with a plain message if it is not a valid one."""
    path = Path(path)
    if not path.is_file():
        raise RunFileError("no file uploaded")
    size = path.stat().st_size
    if size == 0:
        raise RunFileError("the uploaded file is empty (0 bytes)")
    if size > MAX_ZIP_BYTES:
        raise RunFileError(
            f"the upload is {size // 2**20} MB; "
            f"a saved run may be at most {MAX_ZIP_BYTES // 2**20} MB"
        )
    if not zipfile.is_zipfile(path):
        raise RunFileError("the upload is not a zip file: upload a run saved with 'Save run'")
    with tempfile.TemporaryDirectory(prefix="explorer-run-") as tmp:
        try:
            with zipfile.ZipFile(path) as z:
                for name, info in _members(z).items():
                    # read with a hard cap: the sizes in the header could lie
                    with z.open(info) as src:
                        data = src.read(info.file_size + 1)
                    if len(data) != info.file_size:
                        raise RunFileError(f"{info.filename!r} is not the size the zip says")
                    (Path(tmp) / name).write_bytes(data)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, OSError, EOFError) as e:
            raise RunFileError(f"the zip cannot be read ({e})") from None
        try:
            return Trace.load(tmp)
        except ValueError as e:
            message = str(e).replace(tmp + "/", "").replace(tmp, "run")
            raise RunFileError(f"not a valid saved run: {message}") from None
