"""Train the ``mini-things`` CLIP: ``python -m explorer.mini.things.train_clip --work runs/things``.

Both towers from scratch on CLIP's contrastive loss with one hard negative per picture, plus, for
each picture, its choice among captions of its own scene that differ only in one thing's name,
only in its position, or only in the background (``captions.sampled``): the towers learn every
word the UNet will read, and no two things' names merge. AdamW, warm-up and cosine decay,
bfloat16 autocast, plain attention on a CPU. Resumable (``<work>/clip.pt``), progress in
``<work>/clip_progress.log``, held-out figures in ``<work>/clip_metrics.json``; ``--export DIR``
writes the checkpoint as float16 ``DIR/clip`` (a ``CLIPModel`` folder) with ``training.json``;
``--init DIR`` starts an empty work folder from such an export.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

os.environ.setdefault("TQDM_MININTERVAL", "60")  # before tqdm loads: own progress lines suffice

import numpy as np  # noqa: E402
import torch  # noqa: E402

from explorer.mini.clip_stages import clip_loss, variant_loss  # noqa: E402
from explorer.mini.loop import (  # noqa: E402
    Checkpoint,
    autocast,
    lr_at,
    optimize,
    plain_attention,
    ramp_at,
    train_loop,
)
from explorer.mini.things import (  # noqa: E402
    captions,
    clip_figures,
    draw,
    parts,
    stage_cli,  # noqa: E402
)
from explorer.mini.things.train_vae import Progress, _save_metrics  # noqa: E402

OFFSET = 500_000_000  # training seeds of this stage start here (the VAE read others)


@dataclass
class Config:
    steps: int = 2500
    batch: int = 96
    lr: float = 5e-4
    warmup: int = 100
    things: int = 12  # options in a picture's thing choice (the truth + 11 other names)
    positions: int = 5  # ... in its position choice
    backgrounds: int = 5  # ... in its background choice
    save_every: int = 50
    eval_every: int = 500  # held-out figures every this many steps (0: only at the end)
    eval_pictures: int = 128  # pictures in the zero-shot figures
    ramp: int = 100  # a resumed run's learning rate rises linearly over its first steps
    seed: int = 0


SMOKE = dict(steps=2, batch=4, things=3, positions=2, backgrounds=2, save_every=1, eval_every=0,
             eval_pictures=4)  # fmt: skip


def step_loss(model, tokenizer, cfg: Config, step: int, device) -> torch.Tensor:
    """One training batch's loss: contrastive with hard negatives, plus the three choices."""
    seeds = draw.train_seeds(step, cfg.batch, OFFSET)
    scenes = [draw.scene(s) for s in seeds]
    pixels = draw.batch(seeds).to(device)  # (B, 3, 128, 128)
    texts = [draw.sample_caption(s, sc) for s, sc in zip(seeds, scenes)]
    rng = np.random.default_rng([cfg.seed, step])
    choices = [
        captions.sampled(sc, rng, cfg.things, cfg.positions, cfg.backgrounds) for sc in scenes
    ]
    negatives = [ch[int(rng.integers(3))][1] for ch in choices]  # one wrong word each
    v = torch.nn.functional.normalize(
        model.get_image_features(pixel_values=pixels).pooler_output.float(), dim=-1
    )  # (B, P)
    loss = clip_loss(model, tokenizer, pixels, texts, negatives, device, v)
    for k in range(3):  # thing, position, background
        loss = loss + variant_loss(model, tokenizer, v, [ch[k] for ch in choices], device, True)
    return loss


def train(cfg: Config, work: Path, device: torch.device, init: Path | None = None) -> dict:
    """Train (or resume) the CLIP in ``work``; returns the metrics file's contents."""
    work.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    tokenizer = parts.build_tokenizer()
    model = plain_attention(parts.build_clip(len(tokenizer)), device).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.1)
    mpath = work / "clip_metrics.json"
    progress = Progress(work / "clip_progress.log", cfg.steps, 0, every=10)
    n = sum(p.numel() for p in model.parameters())
    progress.log(f"clip: {n:,} parameters, config {asdict(cfg)}")
    objs = dict(clip=model, opt=opt)
    if init is not None and not (work / "clip.pt").exists():
        start = load_export(model, init)
        Checkpoint(work, "clip").save(start, **objs)
        progress.log(f"started from {init} at step {start}")

    def evaluate(step: int, n: int) -> dict:
        figures = clip_figures.figures(model, tokenizer, n)
        model.train()
        progress.log(f"held-out figures at step {step}: {json.dumps(figures)}")
        history = json.loads(mpath.read_text()).get("history", []) if mpath.exists() else []
        _save_metrics(mpath, {"history": [*history, {"step": step, **figures}]})
        return figures

    first: list[int] = []  # the step this run started at

    def step_fn(step: int) -> float:
        lr = ramp_at(first, step, cfg.ramp) * lr_at(step, cfg.steps, cfg.lr, cfg.warmup)
        for g in opt.param_groups:
            g["lr"] = lr
        with autocast(device):
            loss = step_loss(model, tokenizer, cfg, step, device)
        value = optimize(opt, model.parameters(), loss)
        progress(step, value, lr)
        if cfg.eval_every and (step + 1) % cfg.eval_every == 0 and step + 1 < cfg.steps:
            evaluate(step + 1, cfg.eval_pictures)
        return value

    loop: dict = {}
    train_loop("clip", cfg.steps, step_fn, Checkpoint(work, "clip"), objs, cfg, loop)
    final = evaluate(cfg.steps, cfg.eval_pictures * 2)
    return _save_metrics(mpath, {"config": asdict(cfg), "final": final, "loop": loop["clip"]})


def export(cfg: Config, work: Path, out: Path) -> Path:
    """The checkpoint as float16 ``out/clip`` with ``out/clip/training.json``."""
    tokenizer = parts.build_tokenizer()
    model = parts.build_clip(len(tokenizer))
    step = Checkpoint(work, "clip").load(clip=model)
    folder = Path(out) / "clip"
    model.to(torch.float16).save_pretrained(folder)
    metrics = work / "clip_metrics.json"
    history = json.loads(metrics.read_text()).get("history", [None]) if metrics.exists() else [None]
    info = {"steps_done": step, "config": asdict(cfg), "heldout": history[-1]}
    (folder / "training.json").write_text(json.dumps(info, indent=1) + "\n")
    return folder


def load_clip(folder: Path):
    """An exported ``clip`` folder (or the folder above it) as a float32 ``CLIPModel``."""
    from transformers import CLIPModel

    folder = Path(folder)
    folder = folder / "clip" if (folder / "clip").is_dir() else folder
    return CLIPModel.from_pretrained(folder, dtype=torch.float32).eval()


def load_export(model: torch.nn.Module, folder: Path) -> int:
    """Load an exported ``clip`` folder (or the folder above it) into ``model``; its step."""
    folder = Path(folder)
    folder = folder / "clip" if (folder / "clip").is_dir() else folder
    model.load_state_dict(load_clip(folder).state_dict())
    return int(json.loads((folder / "training.json").read_text())["steps_done"])


def main(argv: list[str] | None = None) -> None:
    """Command line: see the module docstring."""
    args, cfg = stage_cli.parse(__doc__, Config, SMOKE, argv)
    if args.export is not None:
        print(f"wrote {export(cfg, args.work, args.export)}")
        return
    metrics = train(cfg, args.work, torch.device(args.device), args.init)
    print(json.dumps(metrics.get("final", {}), indent=2))


if __name__ == "__main__":
    main()
