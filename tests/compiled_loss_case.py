"""Run as `python -m tests.compiled_loss_case`: one training forward + loss compiled by inductor
(the default `model.compile` backend) against eager, on a batch with ignored pixels, printed as
JSON. A subprocess, because the failure this guards against is a C++ assert that ends the process."""

import json

import torch
from torch import nn

from swinls.accel import GpuSettings
from swinls.losses import PAPER_STAGE1, IGNORE
from swinls.training.step import compiled_forward_loss, forward_loss


class TinySegmenter(nn.Module):
    """The smallest model shaped like SwinLS's outputs: enough for inductor to fuse the loss with it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 3, padding=1)
        self.head = nn.Linear(2, 1)

    def forward(self, x):
        logits = self.conv(x)
        return {"logits": logits, "image_logit": self.head(logits.mean(dim=(2, 3))).squeeze(1)}


def gradients(model, loss) -> torch.Tensor:
    return torch.cat([g.flatten() for g in torch.autograd.grad(loss, list(model.parameters()))])


def main() -> None:
    torch.manual_seed(0)
    model = TinySegmenter()
    gpu = GpuSettings.resolve("cpu", bf16=None, channels_last=None, deterministic=True)
    image = torch.randn(4, 3, 128, 128)
    mask = torch.randint(0, 2, (4, 128, 128))
    mask[:2] = IGNORE  # whole rows ignored (pseudo-labels keeping nothing), and part of a row (rotate+shift)
    mask[2, :10] = IGNORE
    eager = forward_loss(model, PAPER_STAGE1, gpu)(image, mask)
    compiled = compiled_forward_loss(model, PAPER_STAGE1, gpu, backend="inductor")(image, mask)
    difference = (gradients(model, eager) - gradients(model, compiled)).abs().max()
    print(json.dumps({"eager": eager.item(), "compiled": compiled.item(), "gradient_difference": difference.item(),
                      "gradient_scale": gradients(model, forward_loss(model, PAPER_STAGE1, gpu)(image, mask)).abs().max().item()}))


if __name__ == "__main__":
    main()
