"""docs/config.md, generated from the config dataclasses themselves: every key with its type,
its default and the comment written beside it in the code. tests/test_docs.py regenerates it and
fails when the file differs, so the reference cannot drift from the code.

    python -m swinls.config_reference > docs/config.md
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
import typing

from swinls.config import to_dict
from swinls.experiment_config import ExperimentConfig

FIELD_LINE = re.compile(r"^\s+(\w+)\s*:[^#]*?#\s*(.+)$")
HEADER = """# Config reference

Every key of the experiment config: what `--config` files, `--set key.sub=value`, a search
space's `base` and `parameters`, and the ablations' shared settings may set. Unknown keys and
values of the wrong type are errors naming the key, its line and the closest valid key. A file
may start from a recipe (`recipe: paper`, `recipe: laptop`, … — see [recipes](recipes.md) — or a
path to a YAML file of your own); its own keys win over the recipe's.

Generated from the dataclasses (`python -m swinls.config_reference > docs/config.md`); a test
keeps this page equal to what the code says.
"""


def _comments(cls: type) -> dict[str, str]:
    comments: dict[str, str] = {}
    for line in inspect.getsource(cls).splitlines():
        match = FIELD_LINE.match(line)
        if match and match.group(1) not in comments:
            comments[match.group(1)] = match.group(2).strip()
    return comments


def _type_text(annotation: typing.Any) -> str:
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))
    return text.replace("typing.", "").replace("|", "\\|")


def _default_text(value: typing.Any) -> str:
    return f"`{json.dumps(to_dict(value))}`"


def sections(config: typing.Any, prefix: str = "") -> list[tuple[str, typing.Any]]:
    """(dotted prefix, default instance) for `config` and every section below it, depth first:
    a section's defaults are those it has in place (stage2's are not stage1's)."""
    out = [(prefix, config)]
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if dataclasses.is_dataclass(value):
            out += sections(value, f"{prefix}{field.name}.")
    return out


def reference() -> str:
    parts = [HEADER]
    for prefix, default in sections(ExperimentConfig()):
        cls = type(default)
        comments = _comments(cls)
        doc = inspect.getdoc(cls) if cls.__doc__ and not cls.__doc__.startswith(f"{cls.__name__}(") else ""
        parts.append(f"\n## `{prefix.rstrip('.') or 'top level'}` ({cls.__name__})\n\n")
        if doc:
            parts.append(" ".join(doc.split()) + "\n\n")
        parts.append("| key | type | default | what |\n| --- | --- | --- | --- |\n")
        for field in dataclasses.fields(cls):
            value = getattr(default, field.name)
            nested = dataclasses.is_dataclass(value)
            what = f"section: see `{prefix}{field.name}` below" if nested else comments.get(field.name, "")
            shown = "" if nested else _default_text(value)
            parts.append(f"| `{prefix}{field.name}` | {_type_text(cls.__annotations__[field.name])} | {shown} | "
                         f"{what.replace('|', chr(92) + '|')} |\n")
    return "".join(parts)


if __name__ == "__main__":
    print(reference(), end="")
