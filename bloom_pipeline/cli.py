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
    "bloom_pipeline.query.cli",
    "bloom_pipeline.reconcile.cli",
)


class _Failure(click.ClickException):
    """A product error as the CLI shows it: ``Error: <one line>`` on stderr, no traceback."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(" ".join(message.split()))
        self.exit_code = exit_code


class _Group(click.Group):
    """The command group; an error the product raises on purpose (``errors.py``) that a command did not handle
    ends the command as one line: exit 2 for a configuration error (an unusable data file included), else 1."""

    def invoke(self, ctx: click.Context):  # type: ignore[no-untyped-def]
        from bloom_pipeline.errors import BloomPipelineError, ConfigurationError

        try:
            return super().invoke(ctx)
        except ConfigurationError as exc:
            raise _Failure(str(exc), 2) from None
        except BloomPipelineError as exc:
            raise _Failure(str(exc), 1) from None


@click.group(cls=_Group)
@click.version_option(package_name="bloom-pipeline")
def cli() -> None:
    """Sync WeGive and Handbid donor data with Bloomerang."""


def _register_all() -> None:
    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(cli)


_register_all()


def main() -> None:
    # Per-record problems are in sync_log; the console gets warnings and worse, one line each.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    cli()


if __name__ == "__main__":
    main()
