"""Typed configs: dataclasses built strictly from dicts, YAML and `key.sub=value` overrides.

Every file a user writes (an experiment config, a search space, a recipe) is described by frozen
dataclasses and read by this one loader: an unknown or misspelled key is an error that names its
full dotted path (and the closest valid key), a value of the wrong type is an error naming the
key, and read from YAML (`parse_yaml`) either says the line it is on. The schemas live beside the
code they configure (`experiment_config.py`, `search/space.py`).
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from typing import Any, Iterable, Mapping, TypeVar

import yaml

from swinls.errors import SwinLSError

T = TypeVar("T")
Keys = tuple  # a key path: section names, mapping keys (which may hold dots) and list indices


class ConfigError(SwinLSError, ValueError):
    """`keys` is the path of the offending key, when there is one; `parse_yaml` turns it into a
    line number."""

    def __init__(self, message: str, keys: Keys = ()) -> None:
        super().__init__(message)
        self.keys = tuple(keys)

    def __reduce__(self):
        return type(self), (str(self), self.keys)


def dotted(keys: Keys) -> str:
    out = ""
    for key in keys:
        out += f"[{key}]" if isinstance(key, int) else (f".{key}" if out else str(key))
    return out


def unknown_key(keys: Keys, key: Any, valid: Iterable[str]) -> ConfigError:
    """The error for `key`, not one of `valid`, under `keys`: its dotted path and the closest valid key."""
    valid = list(valid)
    close = difflib.get_close_matches(str(key), valid, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return ConfigError(f"unknown config key {dotted((*keys, key))!r}{hint}; valid keys here: {', '.join(valid)}", (*keys, key))


def _convert(value: Any, annotation: Any, keys: Keys) -> Any:
    path = dotted(keys)
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _convert(value, option, keys)
            except ConfigError as exc:
                errors.append((option, exc))
        # the option of the value's own shape says best what is wrong (a mapping's bad key)
        shaped = [exc for option, exc in errors if _shape(option) == _shape(type(value))]
        if len(errors) == 1 or len(shaped) == 1:
            raise (shaped or [errors[0][1]])[0]
        raise ConfigError(f"{path}: {value!r} fits none of {_describe(annotation)}", keys)
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{path}: {value!r} is not one of {', '.join(repr(a) for a in args)}", keys)
        return value
    if dataclasses.is_dataclass(annotation):
        if isinstance(value, annotation):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"{path}: expected a mapping of {annotation.__name__} settings, got {value!r}", keys)
        return from_dict(annotation, value, keys)
    if origin in (tuple, list):
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: expected a list, got {value!r}", keys)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise ConfigError(f"{path}: expected {len(args)} values, got {len(value)}", keys)
            return tuple(_convert(v, a, (*keys, i)) for i, (v, a) in enumerate(zip(value, args)))
        item = args[0] if args else Any
        converted = [_convert(v, item, (*keys, i)) for i, v in enumerate(value)]
        return tuple(converted) if origin is tuple else converted
    if origin in (dict, Mapping) or annotation is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{path}: expected a mapping, got {value!r}", keys)
        if len(args) == 2:
            return {k: _convert(v, args[1], (*keys, k)) for k, v in value.items()}
        return dict(value)
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true or false, got {value!r}", keys)
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected an integer, got {value!r}", keys)
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: expected a number, got {value!r}", keys)
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a string, got {value!r}", keys)
        return value
    return value


def _shape(annotation: Any) -> str:
    origin = typing.get_origin(annotation) or annotation
    if dataclasses.is_dataclass(annotation) or origin in (dict, Mapping) or (isinstance(origin, type) and issubclass(origin, Mapping)):
        return "mapping"
    if origin in (list, tuple):
        return "list"
    return "scalar"


def _describe(annotation: Any) -> str:
    """A type as a user reads it: "a number or a list", not typing's repr."""
    names = []
    for option in typing.get_args(annotation) or (annotation,):
        origin = typing.get_origin(option)
        if option is type(None):
            names.append("null")
        elif origin is typing.Literal:
            names.append(" or ".join(repr(a) for a in typing.get_args(option)))
        elif dataclasses.is_dataclass(option) or origin in (dict, Mapping):
            names.append("a mapping")
        elif origin in (list, tuple):
            names.append("a list")
        else:
            names.append({bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(option, str(option)))
    return ", ".join(names[:-1]) + f" or {names[-1]}" if len(names) > 1 else names[0]


def from_dict(cls: type[T], data: Mapping[str, Any] | None, keys: Keys | str = ()) -> T:
    """Build `cls` from a mapping; unknown keys and wrong types are errors naming the key."""
    keys = tuple(keys.split(".")) if isinstance(keys, str) and keys else tuple(keys or ())
    data = dict(data or {})
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = [k for k in data if k not in fields]
    if unknown:
        raise unknown_key(keys, unknown[0], fields)
    required = [name for name, f in fields.items()
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING and name not in data]
    if required:
        raise ConfigError(f"{dotted(keys) or cls.__name__}: missing key {required[0]!r}", (*keys,))
    defaults = _default_instance(cls)
    kwargs = {}
    for name, value in data.items():
        default = getattr(defaults, name, None)
        if dataclasses.is_dataclass(default) and isinstance(value, Mapping):
            # a partial section overrides this config's own default for it, key by key
            value = merge(to_dict(default), value)
        kwargs[name] = _convert(value, hints[name], (*keys, name))
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{dotted(keys) or cls.__name__}: {exc}", keys) from exc


def _default_instance(cls: type) -> Any:
    try:
        return cls()
    except TypeError:  # some field has no default
        return None


def to_dict(config: Any) -> Any:
    """Plain data (dicts, lists, scalars) for YAML/JSON."""
    if dataclasses.is_dataclass(config):
        return {f.name: to_dict(getattr(config, f.name)) for f in dataclasses.fields(config)}
    if isinstance(config, (list, tuple)):
        return [to_dict(v) for v in config]
    if isinstance(config, Mapping):
        return {k: to_dict(v) for k, v in config.items()}
    return config


def parse_override(text: str) -> tuple[list[str], Any]:
    """`a.b.c=value`, the value read as YAML (so 3, 0.5, true, [B4, B3] work)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like key.sub=value")
    key, raw = text.split("=", 1)
    keys = [k for k in key.strip().split(".") if k]
    if not keys:
        raise ConfigError(f"override {text!r} has no key")
    return keys, yaml.safe_load(raw) if raw.strip() else ""


def apply_overrides(data: Mapping[str, Any], overrides: Iterable[str]) -> dict:
    out = _deep_copy(data)
    for text in overrides:
        keys, value = parse_override(text)
        node = out
        for key in keys[:-1]:
            child = node.get(key)
            if child is None:
                child = node[key] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"override {text!r}: {key!r} is not a section")
            node = child
        node[keys[-1]] = value
    return out


def merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict:
    """`update` over `base`, section by section."""
    out = _deep_copy(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = _deep_copy(value)
    return out


def _deep_copy(data: Any) -> Any:
    if isinstance(data, Mapping):
        return {k: _deep_copy(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_deep_copy(v) for v in data]
    return data


# -- YAML, with the line of every key -----------------------------------------------------------

def yaml_mapping(text: str, source: str) -> tuple[dict, dict[Keys, int]]:
    """The top-level mapping of a YAML text and the line (1-based) of every key in it, by key path.
    A key written twice in one mapping is an error: YAML would silently keep the last."""
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML ({exc})") from exc
    if data is None:
        return {}, {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    lines: dict[Keys, int] = {}

    def walk(node, keys: Keys) -> None:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                name = key_node.value if key_node.tag.endswith(":str") else yaml.safe_load(str(key_node.value))
                key = (*keys, name)
                if key in lines:
                    raise ConfigError(f"{source}, line {key_node.start_mark.line + 1}: {dotted(key)!r} is written twice "
                                      f"(first on line {lines[key]})", key)
                lines[key] = key_node.start_mark.line + 1
                walk(value_node, key)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                lines[(*keys, index)] = item.start_mark.line + 1
                walk(item, (*keys, index))

    walk(root, ())
    return data, lines


def line_of(keys: Keys, lines: Mapping[Keys, int]) -> int | None:
    """The line of `keys`, or of its nearest written ancestor (a missing key's section)."""
    for end in range(len(keys), 0, -1):
        if keys[:end] in lines:
            return lines[keys[:end]]
    return None


def located(exc: ConfigError, source: str, lines: Mapping[Keys, int]) -> ConfigError:
    """`exc` said at its place: "<file>, line N: <what is wrong>"."""
    line = line_of(exc.keys, lines)
    where = f"{source}, line {line}" if line else source
    return ConfigError(f"{where}: {exc}", exc.keys)


def parse_yaml(cls: type[T], text: str, source: str) -> T:
    """`cls` from a YAML text, every error with its file and line."""
    data, lines = yaml_mapping(text, source)
    try:
        return from_dict(cls, data)
    except ConfigError as exc:
        raise located(exc, source, lines) from None


def load_yaml(path: str) -> dict:
    from swinls import storage

    data, _ = yaml_mapping(storage.read_bytes(path).decode(), str(path))
    return data
