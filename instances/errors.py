"""The one error an instance file can raise: a single line naming file, layer, row and field."""

from __future__ import annotations


class InstanceError(ValueError):
    """Bad input in an instance file.

    The message is one self-contained line, e.g. ``inst.gpkg: layer 'plots', row 17
    (plot_id 'P00017'), field 'output_wan': negative value -3.0``.
    `row` is the 1-based feature number in the layer (as in a GIS attribute table); fields that do
    not apply (a missing file has no layer) are None and left out of the message.
    """

    def __init__(
        self,
        file: str,
        problem: str,
        *,
        layer: str | None = None,
        row: int | None = None,
        plot_id: str | None = None,
        field: str | None = None,
    ) -> None:
        self.file = file
        self.layer = layer
        self.row = row
        self.plot_id = plot_id
        self.field = field
        self.problem = problem
        super().__init__(_one_line(self._format()))

    def _format(self) -> str:
        where = []
        if self.layer is not None:
            where.append(f"layer '{self.layer}'")
        if self.row is not None:
            row = f"row {self.row}"
            if self.plot_id is not None:
                row += f" (plot_id '{self.plot_id}')"
            where.append(row)
        if self.field is not None:
            where.append(f"field '{self.field}'")
        prefix = f"{self.file}: " + (", ".join(where) + ": " if where else "")
        return prefix + self.problem


def _one_line(text: str) -> str:
    # Values quoted from the file may hold line breaks; the CLI prints exactly one line.
    return " ".join(text.split())
