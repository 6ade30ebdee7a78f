"""Loading YAML configuration files into typed models, with errors that name the file and the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from yuqing.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


def read_yaml(path: Path) -> Any:
    """Parse one YAML file; a missing or malformed file raises ConfigError naming it."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError("file not found", file=path) from exc
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc}", file=path) from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        raise ConfigError(f"malformed YAML{where}: {getattr(exc, 'problem', exc)}", file=path) from exc


def field_path(loc: tuple[int | str, ...]) -> str:
    """Render a pydantic error location as a dotted field path: ('rules', 0, 'name') -> 'rules[0].name'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def validation_to_config_error(exc: ValidationError, file: Path | str | None) -> ConfigError:
    """The first validation error as a ConfigError; the others are appended to the message."""
    errors = exc.errors()
    first = errors[0]
    field = field_path(tuple(first["loc"]))
    msg = first["msg"]
    if len(errors) > 1:
        rest = "; ".join(f"{field_path(tuple(e['loc']))}: {e['msg']}" for e in errors[1:5])
        msg += f" (also: {rest})"
    return ConfigError(msg, file=file, field=field or None, error_type=str(first["type"]),
                       error_ctx=first.get("ctx"))


def load_model(path: Path, model: type[M], *, root_key: str | None = None) -> M:
    """Read `path` and validate it as `model`; errors name the file and the offending field."""
    data = read_yaml(path)
    if data is None:
        data = {}
    if root_key is not None:
        data = {root_key: data} if not isinstance(data, dict) or root_key not in data else data
    if not isinstance(data, dict):
        raise ConfigError(f"expected a mapping at the top level, got {type(data).__name__}", file=path)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_to_config_error(exc, path) from exc
