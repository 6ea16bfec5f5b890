"""The `greenbelt` command line: one package, no import circle. `common` holds what the commands
share; `commands` (generate, solve, check, demo) and `batch` (sweep, compare, frontier) register
themselves on the one typer `app`. It may import every other stage of `optimizer/`."""

from __future__ import annotations

import sys

from optimizer.cli import batch, commands  # noqa: F401  (registers the commands on `app`)
from optimizer.cli.common import app


def main() -> None:  # pragma: no cover
    app(prog_name="greenbelt")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

__all__ = ["app", "main"]
