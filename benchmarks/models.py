"""Model size, compute and CPU speed: parameters (encoder, decoder and image head), forward FLOPs
per 128×128 patch, and training (forward + backward + step) patches/s on this machine, for every
model and Swin size.

    python benchmarks/models.py [--bands RGB] [--batch 4] [--steps 3] [--bf16]

FLOPs are counted by torch's FlopCounterMode (a multiply-add is 2 FLOPs); they are what GPU
utilisation is computed from later. `--bf16` also times each model's step under bfloat16 autocast
with channels_last (`--set run.bf16=true --set model.channels_last=true` of a training run),
alternating its steps with float32's so that both see the same machine: on a CPU with AMX
(Intel Sapphire Rapids and later) that is where bf16 pays.
"""

from __future__ import annotations

import argparse
import copy
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from swinls.accel import autocast, to_memory_format
from swinls.bands import resolve_band_set
from swinls.losses import PAPER_STAGE1, composite
from swinls.models import ModelConfig, build_model
from swinls.recipes import recipe_data, tiny_model


def proxy_model() -> ModelConfig:
    from swinls.config import from_dict

    return from_dict(ModelConfig, recipe_data("swin-proxy")["model"])


CONFIGS = [
    ("SwinLS nano (not a Swin: no shifted window)", tiny_model(drop_path=0.1)),
    ("SwinLS proxy (swin-proxy recipe)", proxy_model()),
    ("SwinLS tiny", ModelConfig(size="tiny")),
    ("SwinLS small", ModelConfig(size="small")),
    ("SwinLS base", ModelConfig(size="base")),
    ("U-Net resnet34", ModelConfig(name="unet", encoder="resnet34")),
    ("DeepLabv3 resnet34", ModelConfig(name="deeplabv3", encoder="resnet34")),
]


def forward_flops(model, channels: int) -> int:
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.randn(1, channels, 128, 128))
    return counter.get_total_flops()


def train_step(model, channels: int, batch: int, bf16: bool):
    """One training step (forward, loss, backward, AdamW) on a fixed batch, as a closure."""
    model.train()
    if bf16:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    image = to_memory_format(torch.randn(batch, channels, 128, 128), bf16)
    mask = torch.randint(0, 2, (batch, 128, 128))

    def step():
        with autocast("cpu", bf16):
            loss, _ = composite(model(image), mask, PAPER_STAGE1)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return step


def train_rates(steps_by_setting: dict, batch: int, steps: int) -> dict:
    """Patches/s of each setting's step, the settings' steps alternated so they share the machine."""
    for step in steps_by_setting.values():
        step()  # warm-up
    seconds = dict.fromkeys(steps_by_setting, 0.0)
    for _ in range(steps):
        for setting, step in steps_by_setting.items():
            start = time.perf_counter()
            step()
            seconds[setting] += time.perf_counter() - start
    return {setting: steps * batch / spent for setting, spent in seconds.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bands", default="RGB")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--bf16", action="store_true", help="also time bf16 autocast + channels_last, alternated")
    args = parser.parse_args()
    channels = resolve_band_set(args.bands).channels
    print(f"{len(channels)} bands ({args.bands}), 128×128, batch {args.batch}, {torch.get_num_threads()} torch threads")
    extra = " train patches/s, bf16 + channels_last (CPU) | bf16 / float32 |" if args.bf16 else ""
    print(f"| model | parameters (M): encoder + decoder + head | forward GFLOPs / patch | train patches/s (CPU) |{extra}")
    print("| --- | ---: | ---: | ---: |" + (" ---: | ---: |" if args.bf16 else ""))
    for label, config in CONFIGS:
        model = build_model(config, channels)
        encoder, decoder, rest = parameter_split(model)
        gflops = forward_flops(model, len(channels)) / 1e9
        settings = {"float32": train_step(model, len(channels), args.batch, bf16=False)}
        if args.bf16:
            settings["bf16"] = train_step(copy.deepcopy(model), len(channels), args.batch, bf16=True)
        rates = train_rates(settings, args.batch, args.steps)
        cells = f" {rates['bf16']:.1f} | {rates['bf16'] / rates['float32']:.2f}× |" if args.bf16 else ""
        print(f"| {label} | {encoder + decoder + rest:.2f} = {encoder:.2f} + {decoder:.2f} + {rest:.3f} | {gflops:.2f} | "
              f"{rates['float32']:.1f} |{cells}", flush=True)


def parameter_split(model) -> tuple[float, float, float]:
    """Millions of parameters in the encoder, the decoder, and the rest (the image-level head)."""
    def count(module) -> float:
        return sum(p.numel() for p in module.parameters()) / 1e6

    total, encoder, decoder = count(model), count(model.encoder), count(model.decoder)
    return encoder, decoder, total - encoder - decoder


if __name__ == "__main__":
    main()
