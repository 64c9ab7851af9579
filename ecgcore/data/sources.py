"""The one registry of data sources and the one parser of their spec strings.

A spec names a source kind, a folder and typed options: ``kind:path;option=value;option=value``
(``ptbxl:/data/ptbxl;fs=100;plus_dir=/data/ptbxl-plus``). Each kind is a dataset class that
registers itself::

    @register_source("ptbxl", fs=float, plus_dir=Path, plus_outliers=bool)
    class PTBXL(ECGDataset):
        def __init__(self, root, fs=None, plus_dir=None, plus_outliers=False): ...

and is opened with :func:`open_source`. The command line, the experiments and the pages build
specs with :func:`format_spec` and read them with :func:`parse_spec`; nothing else splits a spec.
The package :mod:`ecgcore.data` imports every module that registers a kind, so importing it is
enough for :func:`open_source` to know them all.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

from ecgcore.data.base import DatasetError, ECGDataset

#: The types an option may have; its text in a spec is converted to that type.
OPTION_TYPES: tuple[type, ...] = (str, int, float, bool, Path)
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
_TYPE_WORDS = {str: "text", int: "whole number", float: "number", bool: "true/false", Path: "path"}

D = TypeVar("D", bound=type[ECGDataset])


class SourceSpecError(DatasetError):
    """A spec string that cannot be read: unknown kind, no path, an unknown or badly typed option."""


@dataclass(frozen=True)
class SourceKind:
    """A registered kind: its dataset class and the typed options its constructor takes."""

    kind: str
    cls: type[ECGDataset]
    options: Mapping[str, type] = field(default_factory=dict)


_SOURCES: dict[str, SourceKind] = {}
#: kind -> :class:`SourceKind`, read-only (register with :func:`register_source`).
SOURCES: Mapping[str, SourceKind] = MappingProxyType(_SOURCES)


def register_source(kind: str, **options: type) -> Callable[[D], D]:
    """Class decorator: make ``kind:path;...`` open this dataset class.

    ``options`` name the constructor's keyword arguments a spec may set and their types (one of
    :data:`OPTION_TYPES`). The constructor is called as ``cls(path, **options)``.

    Raises
    ------
    ValueError
        The kind is taken by another class, is not a plain name, an option type is not supported, or
        an option is not a parameter of the constructor (a programming error, raised at import).
    """
    if not kind.isidentifier():
        raise ValueError(f"source kind {kind!r} must be a plain name (letters, digits, _)")

    def decorate(cls: D) -> D:
        previous = _SOURCES.get(kind)
        if previous is not None and previous.cls.__qualname__ != cls.__qualname__:
            raise ValueError(f"source kind {kind!r} is already registered to {previous.cls.__name__}")
        parameters = inspect.signature(cls.__init__).parameters
        for name, typ in options.items():
            if typ not in OPTION_TYPES:
                raise ValueError(f"{cls.__name__}: option {name!r} has unsupported type {typ!r}")
            if name not in parameters:
                raise ValueError(f"{cls.__name__}: option {name!r} is not a parameter of its constructor")
        cls.kind = kind
        _SOURCES[kind] = SourceKind(kind, cls, MappingProxyType(dict(options)))
        return cls

    return decorate


def source_kinds() -> tuple[str, ...]:
    """The registered kinds, in registration order."""
    return tuple(_SOURCES)


@dataclass(frozen=True)
class SourceSpec:
    """A parsed spec: ``kind``, ``path`` as written, and ``options`` converted to their types."""

    kind: str
    path: str
    options: Mapping[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return format_spec(self.kind, self.path, **self.options)


def _known(kind: str, spec: str) -> SourceKind:
    if kind not in _SOURCES:
        raise SourceSpecError(
            f"bad data source {spec!r}: unknown kind {kind!r}; expected one of {', '.join(_SOURCES)} "
            "(e.g. ptbxl:bundled, deepfake:/data/deepfake)"
        )
    return _SOURCES[kind]


def _convert(value: str, typ: type, name: str, spec: str) -> Any:
    """The option text ``value`` as ``typ``, or a :class:`SourceSpecError` naming the spec."""
    text = value.strip()
    try:
        if typ is bool:
            if text.lower() not in _TRUE + _FALSE:
                raise ValueError
            return text.lower() in _TRUE
        if typ is Path:
            if not text:
                raise ValueError
            return Path(text).expanduser()
        return typ(text)
    except ValueError:
        raise SourceSpecError(
            f"bad data source {spec!r}: option {name}={value!r} is not a {_TYPE_WORDS[typ]}"
        ) from None


def parse_spec(spec: str) -> SourceSpec:
    """Read ``"kind:path;option=value;..."`` into a :class:`SourceSpec` with typed options.

    Raises
    ------
    SourceSpecError
        No ``kind:``, an unregistered kind, an empty path, an option without ``=``, an option the
        kind does not take, or a value that is not of the option's type. The message quotes the spec.
    """
    text = str(spec)
    kind, sep, rest = text.partition(":")
    kind = kind.strip()
    if not sep:
        raise SourceSpecError(f"bad data source {text!r}: expected KIND:PATH (e.g. ptbxl:bundled)")
    registered = _known(kind, text)
    path, *items = rest.split(";")
    if not path.strip():
        raise SourceSpecError(f"bad data source {text!r}: no path after {kind}:")
    options: dict[str, Any] = {}
    for item in items:
        name, eq, value = item.partition("=")
        name = name.strip()
        if not eq or not name:
            raise SourceSpecError(f"bad data source {text!r}: option {item!r} is not name=value")
        if name not in registered.options:
            accepted = ", ".join(registered.options) or "none"
            raise SourceSpecError(
                f"bad data source {text!r}: {kind} takes no option {name!r} (it takes: {accepted})"
            )
        options[name] = _convert(value, registered.options[name], name, text)
    return SourceSpec(kind, path.strip(), MappingProxyType(options))


def format_spec(kind: str, path: str | Path, **options: Any) -> str:
    """The spec string of ``kind`` at ``path`` with ``options`` (None values are left out).

    Raises
    ------
    SourceSpecError
        An unregistered kind, an option the kind does not take, or a ``;`` in the path or a value
        (it would be read back as an option separator).
    """
    text = f"{kind}:{path}"
    registered = _known(kind, text)
    parts = [str(path)]
    for name, value in options.items():
        if value is None:
            continue
        if name not in registered.options:
            raise SourceSpecError(f"data source {text!r}: {kind} takes no option {name!r}")
        if isinstance(value, bool):
            shown = str(value).lower()
        elif isinstance(value, float):
            shown = f"{value:g}"
        else:
            shown = str(value)
        parts.append(f"{name}={shown}")
    if any(";" in p for p in parts):
        raise SourceSpecError(f"data source {text!r}: a path or option value contains ';'")
    return f"{kind}:" + ";".join(parts)


def open_source(spec: str | SourceSpec, **overrides: Any) -> ECGDataset:
    """Open the dataset a spec names; keyword ``overrides`` replace the spec's options (None is ignored).

    ``open_source("ptbxl:bundled")``, ``open_source("ptbxl:/data/ptbxl;fs=100")``,
    ``open_source("deepfake:/data/deepfake")``, ``open_source("wfdb:/data/ludb")``.
    """
    parsed = spec if isinstance(spec, SourceSpec) else parse_spec(spec)
    registered = _known(parsed.kind, str(spec))
    unknown = [k for k in overrides if k not in registered.options]
    if unknown:
        raise SourceSpecError(f"data source {str(spec)!r}: {parsed.kind} takes no option {unknown[0]!r}")
    options = {**parsed.options, **{k: v for k, v in overrides.items() if v is not None}}
    return registered.cls(parsed.path, **options)
