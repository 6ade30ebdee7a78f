"""What a logical index is (name, mapping, version): the one type every per-index module declares its index with,
apart from :mod:`index.layout` so that layout can list them all without an import cycle."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class IndexSpec:
    """One logical index: ``<prefix>-<name>`` is the alias, ``<alias>-v<version>-<n>`` the concrete indices."""

    name: str
    mappings: dict[str, Any]
    version: int = 1
    extra_settings: dict[str, Any] = field(default_factory=dict)

    def alias(self, prefix: str) -> str:
        return f"{prefix}-{self.name}"

    def template_name(self, prefix: str) -> str:
        return f"{self.alias(prefix)}-template"

    def pattern(self, prefix: str) -> str:
        return f"{self.alias(prefix)}-v*"

    def index_name(self, prefix: str, generation: int | None = None) -> str:
        suffix = f"-{generation}" if generation is not None else ""
        return f"{self.alias(prefix)}-v{self.version}{suffix}"
