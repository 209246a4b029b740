"""Model size, compute and CPU speed: parameters (encoder, decoder and image head), forward FLOPs
per 128×128 patch, and training (forward + backward + step) patches/s on this machine, for every
model and Swin size.

    python benchmarks/models.py [--bands RGB] [--batch 4] [--steps 3]

FLOPs are counted by torch's FlopCounterMode (a multiply-add is 2 FLOPs); they are what GPU
utilisation is computed from later.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

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


def train_rate(model, channels: int, batch: int, steps: int) -> float:
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    image, mask = torch.randn(batch, channels, 128, 128), torch.randint(0, 2, (batch, 128, 128))

    def step():
        loss, _ = composite(model(image), mask, PAPER_STAGE1)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    step()  # warm-up
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * batch / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bands", default="RGB")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    channels = resolve_band_set(args.bands).channels
    print(f"{len(channels)} bands ({args.bands}), 128×128, batch {args.batch}, {torch.get_num_threads()} torch threads")
    print("| model | parameters (M): encoder + decoder + head | forward GFLOPs / patch | train patches/s (CPU) |")
    print("| --- | ---: | ---: | ---: |")
    for label, config in CONFIGS:
        model = build_model(config, channels)
        encoder, decoder, rest = parameter_split(model)
        gflops = forward_flops(model, len(channels)) / 1e9
        rate = train_rate(model, len(channels), args.batch, args.steps)
        print(f"| {label} | {encoder + decoder + rest:.2f} = {encoder:.2f} + {decoder:.2f} + {rest:.3f} | {gflops:.2f} | "
              f"{rate:.1f} |", flush=True)


def parameter_split(model) -> tuple[float, float, float]:
    """Millions of parameters in the encoder, the decoder, and the rest (the image-level head)."""
    def count(module) -> float:
        return sum(p.numel() for p in module.parameters()) / 1e6

    total, encoder, decoder = count(model), count(model.encoder), count(model.decoder)
    return encoder, decoder, total - encoder - decoder


if __name__ == "__main__":
    main()
