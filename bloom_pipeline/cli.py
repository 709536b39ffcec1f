"""The ``bloom-pipeline`` command line.

Each area registers its own commands (``register(cli)`` in its module) so this file stays a thin
index. Nothing here reads configuration at import time.
"""

import importlib
import logging

import click

# Modules that add commands to the group; each exposes ``register(group)``.
_COMMAND_MODULES = (
    "bloom_pipeline.sandbox.cli",
    "bloom_pipeline.mapping.cli",
    "bloom_pipeline.staging.cli",
    "bloom_pipeline.sync.cli",
)


@click.group()
@click.version_option(package_name="bloom-pipeline")
def cli() -> None:
    """Sync WeGive and Handbid donor data with Bloomerang."""


def _register_all() -> None:
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:  # an area not built yet
            if exc.name != name:
                raise
            continue
        module.register(cli)


_register_all()


def main() -> None:
    # Per-record problems are in sync_log; the console gets warnings and worse, one line each.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    cli()


if __name__ == "__main__":
    main()
