"""The report's markdown: table cells, tables, and how numbers and verdicts are written."""


def ms(value: float) -> str:
    return f"{value:.1f} ms"


def yes(ok: bool | None) -> str:
    return "-" if ok is None else ("yes" if ok else "**NO**")


def ratio(value: float, limit: float | None) -> str:
    if not limit:
        return "-"
    times = value / limit
    return f"{times:.2f}×" if times >= 0.1 else f"{times:.3f}×"


class Table:
    def __init__(self, *header: str) -> None:
        self.rows = [list(header), ["---"] * len(header)]

    def add(self, *cells: object) -> None:
        # A cell is one line of markdown: no newlines, no bare pipes.
        self.rows.append([" ".join(str(c).split()).replace("|", "\\|") for c in cells])

    def __str__(self) -> str:
        return "\n".join("| " + " | ".join(row) + " |" for row in self.rows) + "\n"
