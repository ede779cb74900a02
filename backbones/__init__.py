"""Backbone models (FaceFormer, CodeTalker, SelfTalk styles) behind one registry.

Installed as ``kmtalk_cli.backbones``. Built-ins and third-party packages both arrive through the
``kmtalk.backbones`` entry-point group (an entry point names a :class:`Backbone` subclass, or a
module that calls :func:`register_backbone` on import); a plugin that fails to load is a warning
naming it, never a crash.
"""

from __future__ import annotations

import importlib
import warnings
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from ..errors import KmtalkWarning, ModelError
from .base import Backbone, BackboneConfig, Batch, check_field_types

ENTRY_POINT_GROUP = "kmtalk.backbones"
# Imported even when the package metadata is missing (a plain source checkout).
_BUILTIN_MODULES = ("faceformer", "codetalker", "selftalk")

_registry: dict[str, type[Backbone]] = {}
_discovered = False

__all__ = [
    "Backbone",
    "BackboneConfig",
    "BackboneInfo",
    "Batch",
    "create_backbone",
    "get_backbone",
    "list_backbones",
    "register_backbone",
]


def register_backbone(name: str | None = None):  # noqa: ANN201 - decorator
    """Class decorator: make a :class:`Backbone` subclass available as ``name``."""

    def decorate(cls: type[Backbone]) -> type[Backbone]:
        key = name or cls.name
        if not key:
            raise ValueError(f"{cls.__name__} needs a name to be registered")
        if not (isinstance(cls, type) and issubclass(cls, Backbone)):
            raise TypeError(f"{cls!r} is not a Backbone subclass")
        existing = _registry.get(key)
        if existing is not None and existing is not cls:
            warnings.warn(
                KmtalkWarning(f"Backbone '{key}' from {cls.__module__} replaces the one from {existing.__module__}."),
                stacklevel=2,
            )
        cls.name = key
        _registry[key] = cls
        return cls

    return decorate


def _discover() -> None:
    global _discovered
    if _discovered:
        return
    _discovered = True
    for module in _BUILTIN_MODULES:
        importlib.import_module(f"{__name__}.{module}")
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            loaded = ep.load()
            if isinstance(loaded, type) and issubclass(loaded, Backbone) and _registry.get(ep.name) is not loaded:
                register_backbone(ep.name)(loaded)
        except Exception as exc:  # noqa: BLE001 - any plugin failure is the plugin's problem
            warnings.warn(
                KmtalkWarning(f"Backbone plugin '{ep.name}' ({ep.value}) failed to load and is skipped: {exc}"),
                stacklevel=2,
            )


def rediscover() -> None:
    """Forget what was discovered and look at the entry points again (tests, plugin installs)."""
    global _discovered
    _discovered = False
    _discover()


@dataclass(frozen=True)
class BackboneInfo:
    name: str
    description: str
    module: str
    presets: tuple[str, ...]
    stages: tuple[str, ...]
    parameters: int  # at the default preset for the bundled head


def get_backbone(name: str) -> type[Backbone]:
    _discover()
    if name not in _registry:
        have = ", ".join(sorted(_registry)) or "none"
        raise ModelError(f"Unknown backbone '{name}'; available: {have}.")
    return _registry[name]


def make_config(name: str, preset: str = "default", **overrides: Any) -> BackboneConfig:
    """The config of backbone ``name`` at ``preset`` with ``overrides`` applied (dicts merge into ``audio``)."""
    cls = get_backbone(name)
    if preset not in cls.presets:
        raise ModelError(f"Backbone '{name}' has no preset '{preset}'; available: {', '.join(cls.presets)}.")
    base = cls.config_class()
    values = {**cls.presets[preset]}
    try:
        config = base.replace(**values) if values else base
        return config.replace(**overrides) if overrides else config
    except (TypeError, ValueError) as exc:
        raise ModelError(f"Bad configuration for backbone '{name}': {exc}.") from None


def create_backbone(name: str, config: BackboneConfig | dict[str, Any] | None = None, *, preset: str = "default", **overrides: Any) -> Backbone:
    """Build backbone ``name`` from a config object, a dict of its fields, or a preset plus overrides."""
    cls = get_backbone(name)
    if config is None:
        config = make_config(name, preset, **overrides)
    try:
        if isinstance(config, dict):
            config = cls.config_class.from_dict(config)
        check_field_types(config)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"Bad configuration for backbone '{name}': {exc}.") from None
    return cls(config)


def list_backbones() -> list[BackboneInfo]:
    _discover()
    infos = []
    for name in sorted(_registry):
        cls = _registry[name]
        try:
            n_params = sum(p.numel() for p in cls(make_config(name)).parameters())
        except Exception:  # noqa: BLE001 - a plugin whose default does not build still lists
            n_params = -1
        infos.append(BackboneInfo(name, cls.description, cls.__module__, tuple(cls.presets), cls.stages, n_params))
    return infos
