"""What every config section shares: the one wording of a failed check, and read access as a mapping."""

from __future__ import annotations

from dataclasses import fields
from typing import Any


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the key and the value."""


def check_setting(ok: bool, key: str, value: Any, why: str) -> None:
    """Raise a ConfigError naming `key` and `value` unless `ok`: the one wording of every config check."""
    if not ok:
        raise ConfigError(f"{key}={value!r}: {why}")


class Section:
    """Lets a config group be read as a mapping, as the training API documents (`config.training["epochs"]`)."""

    def __getitem__(self, key: str) -> Any:
        if key not in self.keys():
            raise KeyError(f"{type(self).__name__} has no key {key!r}; keys: {', '.join(self.keys())}")
        return getattr(self, key)

    def __contains__(self, key: object) -> bool:
        return key in self.keys()

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key, default) if key in self.keys() else default

    def keys(self) -> list[str]:
        return [f.name for f in fields(self)]
