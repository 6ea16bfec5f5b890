"""What every command shares: the typer app, the consoles, one-line failures, progress, and
loading an instance or a scenario with a clear error."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Plan the reduction of construction land in Beijing's green belts.")
console = Console(stderr=True)
# Tables stay readable when piped to a file or a CI log (rich would otherwise assume 80 columns).
out_console = Console(width=None if sys.stdout.isatty() else 120)

DEFAULT_DISTRICT, DEFAULT_SEED = "chaoyang", 1
DEFAULT_CANDIDATES = 10_000  # generate: candidate plots of a new instance (villages mode)
DEMO_CANDIDATES = 5_000  # the demo's instance: realistic parcels, solved within a minute


def fail(message: str, code: int = 1) -> None:
    """One clear line, no traceback."""
    console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@contextmanager
def progress_bar(description: str) -> Iterator[Callable[[str, float], None]]:
    """A rich progress bar fed by (step, fraction) callbacks."""
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                  TextColumn("{task.percentage:>3.0f}%"), TimeElapsedColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task(description, total=1.0)

        def update(step: str, fraction: float) -> None:
            bar.update(task, description=f"{description}: {step}", completed=fraction)

        yield update


@contextmanager
def spinner(description: str) -> Iterator[Callable[[str], None]]:
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task(description, total=None)

        def say(message: str) -> None:
            console.print(f"  {message}", highlight=False)
            bar.update(task, description=message)

        yield say


def load_instance_or_fail(path: Path):
    from instances.errors import InstanceError
    from instances.loader import load_instance

    try:
        with progress_bar(f"loading {path.name}") as update:
            return load_instance(path, progress=update)
    except InstanceError as err:
        fail(str(err))


def load_scenario_or_fail(path: Path | None):
    from optimizer.model.scenario import ScenarioError, load_scenario

    try:
        return load_scenario(path)
    except ScenarioError as err:
        fail(str(err))


def out_folder_or_fail(path: Path, outputs: tuple[str, ...] = ()) -> Path:
    """Before any work: the output folder is (or can be created as) a writable folder; temporary
    files a killed run left there are removed. Nothing is created yet."""
    from optimizer.plan.runset import OutputFolderError, prepare_output_folder

    try:
        return prepare_output_folder(path, outputs, create=False)
    except OutputFolderError as err:
        fail(str(err))
    raise AssertionError  # fail() never returns


def out_file_or_fail(path: Path) -> None:
    """Before any work: a file to write (`generate --out`), not a folder, in a writable folder."""
    from optimizer.plan.runset import OutputFolderError, prepare_output_folder

    if path.is_dir():
        fail(f"{path}: --out is a folder; give the file to write, e.g. {path / 'instance.gpkg'}")
    try:
        prepare_output_folder(path.parent, create=False)
    except OutputFolderError as err:
        fail(f"{path}: cannot be written ({err})")


def time_limit_or_fail(value: float | None) -> None:
    from optimizer.model.scenario import ScenarioError, positive_seconds

    if value is not None:
        try:
            positive_seconds("--time-limit", value)
        except ScenarioError as err:
            fail(str(err))
