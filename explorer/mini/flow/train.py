"""Train mini-flow: ``python -m explorer.mini.flow.train --work runs/flow``.

Stages, each resumable from ``--work``: ``pool`` (mini-shapes' VAE encodes the training
pictures of the shapes world once), ``states`` (the text towers' prompt embeds of every distinct
caption, and of the empty one), ``flow`` (the transformer learns the velocity ε − x0 on
x_t = σ·ε + (1 − σ)·x0, σ logit-normal as in SD3, 10% of captions dropped for guidance), then
``package`` writes the diffusers folder (``explorer/mini/flow/model`` or ``--out``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from types import SimpleNamespace

import torch
from diffusers import SD3Transformer2DModel
from tqdm import tqdm

from explorer.engine import flow
from explorer.mini import data
from explorer.mini.flow import parts
from explorer.mini.loop import EMA, Checkpoint, autocast, lr_at, optimize, train_loop


@torch.no_grad()
def encode_pool(work: Path, size: int) -> dict:
    """mini-shapes' VAE posterior (mean, std) and the caption of training seeds 0..size-1."""
    path = work / f"pool_{size}.pt"
    if path.exists():
        return torch.load(path, map_location="cpu", weights_only=True)
    vae = parts.shapes_vae()
    means, stds, captions = [], [], []
    for start in tqdm(range(0, size, 256), desc="encode pool"):
        images, caps, _ = data.batch(range(start, min(start + 256, size)))
        post = vae.encode(torch.from_numpy(images)).latent_dist
        means.append(post.mean)  # (b, 4, 16, 16)
        stds.append(post.std)
        captions += caps
    unique = sorted(set(captions))
    row = {c: i for i, c in enumerate(unique)}
    pool = {
        "mean": torch.cat(means),
        "std": torch.cat(stds),
        "rows": torch.tensor([row[c] for c in captions]),  # (N,) each picture's caption
        "scaling_factor": torch.tensor(float(vae.config.scaling_factor)),
    }
    torch.save(pool, path)
    (work / "captions.json").write_text(json.dumps(unique))
    return pool


@torch.no_grad()
def text_states(work: Path) -> dict:
    """(U, 78, 256) short prompt embeds and (U, 256) pooled vectors per distinct caption; the
    empty caption's last (row U)."""
    path = work / "states.pt"
    if path.exists():
        return torch.load(path, map_location="cpu", weights_only=True)
    pipe = parts.assemble(parts.build_transformer())
    captions = json.loads((work / "captions.json").read_text()) + [""]
    embeds, pooled = [], []
    for i in tqdm(range(0, len(captions), 256), desc="text states"):
        e, _, p, _ = pipe.encode_prompt(
            captions[i : i + 256], None, None, do_classifier_free_guidance=False
        )  # (b, 333, 256), (b, 256)
        embeds.append(parts.short_sequence(e))
        pooled.append(p)
    states = {"embeds": torch.cat(embeds), "pooled": torch.cat(pooled)}
    torch.save(states, path)
    return states


def sample_sigma(batch: int, gen: torch.Generator, sampler_share: float = 0.0) -> torch.Tensor:
    """(B,) σ: SD3's logit-normal(0, 1) for 90%, uniform for the rest (the ends still seen).

    With `sampler_share` > 0 that share is instead drawn as the sampler spaces its steps
    (uniform, then the scheduler's shift): logit-normal puts 5% of σ above 0.86 where the shifted
    sampler takes a quarter of its steps, and guidance pushes those first steps off the data."""
    logit_normal = torch.sigmoid(torch.randn(batch, generator=gen))
    uniform = torch.rand(batch, generator=gen)
    sigma = torch.where(torch.rand(batch, generator=gen) < 0.1, uniform, logit_normal)
    if sampler_share > 0:
        shifted = flow.shifted_sigma(torch.rand(batch, generator=gen), parts.SCHEDULER["shift"])
        sigma = torch.where(torch.rand(batch, generator=gen) < sampler_share, shifted, sigma)
    return sigma


def train_flow(args, metrics: dict) -> None:
    pool, states = encode_pool(args.work, args.pool), text_states(args.work)
    empty = len(states["embeds"]) - 1
    scale = float(pool["scaling_factor"])
    torch.manual_seed(args.seed)
    model = parts.build_transformer()
    if args.init is not None:  # resume from committed weights (fp16 is a valid start)
        start = SD3Transformer2DModel.from_pretrained(args.init / "transformer")
        model.load_state_dict(start.float().state_dict())
    model = parts.for_training(model).train()
    ema = EMA(model, 0.999)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    device = torch.device("cpu")

    def step_fn(step: int) -> float:
        gen = torch.Generator().manual_seed(args.seed * 1_000_003 + step)  # resumes exactly
        idx = torch.randint(0, len(pool["rows"]), (args.batch,), generator=gen)
        mean, std = pool["mean"][idx], pool["std"][idx]
        x0 = (mean + std * torch.randn(mean.shape, generator=gen)) * scale  # (B, 4, 16, 16)
        rows = pool["rows"][idx]
        rows = torch.where(torch.rand(args.batch, generator=gen) < 0.1, empty, rows)  # (B,)
        noise = torch.randn(x0.shape, generator=gen)  # (B, 4, 16, 16)
        sigma = sample_sigma(args.batch, gen, args.sampler_share)  # (B,)
        s = sigma.view(-1, 1, 1, 1)
        xt = s * noise + (1 - s) * x0  # (B, 4, 16, 16)
        for g in opt.param_groups:
            g["lr"] = lr_at(step, args.steps, args.lr, warmup=200)
        with autocast(device):
            pred = model(
                hidden_states=xt,
                timestep=sigma * 1000,
                encoder_hidden_states=states["embeds"][rows],  # (B, 78, 256)
                pooled_projections=states["pooled"][rows],  # (B, 256)
            ).sample.float()  # (B, 4, 16, 16)
        loss = (pred - (noise - x0)).pow(2).mean()
        value = optimize(opt, model.parameters(), loss)
        ema.update(model, step)
        return value

    objs = dict(model=model, ema=ema, opt=opt)
    settings = SimpleNamespace(save_every=args.save_every)
    train_loop("flow", args.steps, step_fn, Checkpoint(args.work, "flow"), objs, settings, metrics)


def load_trained(work: Path):
    """The transformer with the EMA weights of the last checkpoint, plain attention processors."""
    model = parts.build_transformer()
    state = torch.load(work / "flow.pt", map_location="cpu", weights_only=True)
    ema = EMA(model, 0.0)
    ema.load_state_dict(state["ema"])
    model.load_state_dict(ema.state_for(model))
    return model.eval(), int(state["step"])


def record_run(args) -> None:
    """run.json in the work folder, once: this run's recipe and the history of its `--init`."""
    path = args.work / "run.json"
    if path.exists():
        return
    earlier = {"steps": 0}
    if args.init is not None and (args.init / "training.json").exists():
        earlier = json.loads((args.init / "training.json").read_text())
    runs = earlier.get("runs") or ([{"steps": earlier["steps"]}] if earlier["steps"] else [])
    recipe = {"lr": args.lr, "batch": args.batch, "sampler_share": args.sampler_share}
    path.write_text(json.dumps({**recipe, "init_steps": earlier["steps"], "runs": runs}))


def history(work: Path, step: int) -> dict:
    """training.json: the steps of this run, after those of the weights it started from."""
    run = json.loads((work / "run.json").read_text()) if (work / "run.json").exists() else {}
    recipe = {k: v for k, v in run.items() if k not in ("init_steps", "runs")}
    return {
        "steps": run.get("init_steps", 0) + step,
        "runs": run.get("runs", []) + [{"steps": step, **recipe}],
    }


def package(work: Path, out: Path) -> Path:
    import shutil

    model, step = load_trained(work)
    pipe = parts.assemble(model)
    pipe.to(torch.float16)
    pipe.save_pretrained(out, safe_serialization=True)
    shutil.copy(parts.SHAPES_DIR / "preview.json", out / "preview.json")  # the same VAE
    (out / "training.json").write_text(json.dumps(history(work, step), indent=2))
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--work", type=Path, default=Path("runs/flow"))
    p.add_argument("--out", type=Path, default=parts.MODEL_DIR)
    p.add_argument("--stage", choices=["all", "flow", "package"], default="all")
    p.add_argument("--steps", type=int, default=5000)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--pool", type=int, default=20_000)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--save-every", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--init", type=Path, help="start from this mini-flow folder's transformer")
    p.add_argument("--sampler-share", type=float, default=0.0, help="share of σ as sampled")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    args.work.mkdir(parents=True, exist_ok=True)
    metrics_file = args.work / "metrics.json"
    metrics = json.loads(metrics_file.read_text()) if metrics_file.exists() else {}
    t0 = time.time()
    if args.stage in ("all", "flow"):
        record_run(args)
        train_flow(args, metrics)
    if args.stage in ("all", "package"):
        print(f"packaged mini-flow in {package(args.work, args.out)}")
    metrics.setdefault("minutes", []).append(round((time.time() - t0) / 60, 2))
    metrics_file.write_text(json.dumps(metrics, indent=2))


if __name__ == "__main__":
    main()
