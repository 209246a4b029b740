"""Copy timm's pretrained weights into a bucket (or folder), for clusters without internet.

    python jobs/weights.py NAME DEST

Examples:
    # Swin-B's ImageNet weights, as the paper recipe starts from, into the bucket
    python jobs/weights.py swin_base_patch4_window7_224.ms_in22k_ft_in1k s3://my-bucket/weights
    # then train with them on any node
    python jobs/train.py --recipe paper --set model.pretrained=s3://my-bucket/weights/swin_base_patch4_window7_224.ms_in22k_ft_in1k.safetensors

NAME is a timm model name with or without its tag (without: timm's default weights). They come
from the Hugging Face hub cache (HF_HUB_CACHE) or are downloaded into it, then copied to DEST
with a `.json` beside them (sha256 and size) that every node checks its download against.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "platform"))  # the package beside this job (ray job submit's copy), not an installed one


def parse_args(argv=None):
    from swinls.cli import JobParser

    parser = JobParser(__doc__)
    parser.add_argument("name", help="a timm model name, e.g. swin_base_patch4_window7_224.ms_in22k_ft_in1k")
    parser.add_argument("dest", help="a folder or s3://bucket/prefix")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    """The job; its exit status (a user error is one line on stderr and 2)."""
    from swinls.cli import run_job

    return run_job(_run, argv)


def _run(argv=None) -> int:
    args = parse_args(argv)
    from swinls import preflight
    from swinls.models.weights import export

    preflight.check_storage(args.dest)
    uri = export(args.name, args.dest)
    print(f"model.pretrained: {uri}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
