"""Sub-commands contributed by the components (each adds its own parsers)."""

from __future__ import annotations

import argparse
import importlib
import importlib.util

# (module, function) pairs; each function adds its parsers to the `yuqing` sub-command group.
_COMPONENTS = [
    ("crawlers.cli", "add_subcommand"),
    ("crawlers.extract_cli", "add_subcommand"),
    ("alerts.cli", "add_subcommand"),
    ("dashboard.cli", "add_subcommand"),
    ("yuqing.service", "add_subcommands"),
]


def add_subcommands(sub: argparse._SubParsersAction) -> None:
    for module_name, func_name in _COMPONENTS:
        if importlib.util.find_spec(module_name) is None:  # TODO(lead): drop once every component landed
            continue
        getattr(importlib.import_module(module_name), func_name)(sub)
    if importlib.util.find_spec("nlp.cli") is not None:
        nlp = sub.add_parser("nlp", help="train, evaluate and run the Chinese classifier")
        nlp_sub = nlp.add_subparsers(dest="nlp_command", required=True)
        importlib.import_module("nlp.cli").add_subcommands(nlp_sub)
