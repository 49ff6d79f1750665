"""Documents as PDF, written directly (PDF 1.4, the standard Helvetica fonts).

Invoices and credit notes are text and rules on A4 pages; a hand-written page description
keeps the service free of a layout engine and renders a 500-line invoice in milliseconds.
"""

from tenvoice.invoices.document import Layout, Printable, Table

PAGE_WIDTH, PAGE_HEIGHT = 595, 842  # A4 in points
MARGIN = 50
LINE = 14
TOP = PAGE_HEIGHT - MARGIN
# The lowest baseline for content: the page footer sits below it.
BOTTOM = MARGIN
# The line table's columns: the description takes what the numbers leave.
LINE_TABLE = (MARGIN, 300, 360, 440, 500)
# Totals: labels up to ~28 characters ("Credited to amount due") end before their amounts.
TOTAL_LABEL_X, TOTAL_AMOUNT_X = 340, 500


def render(document: Printable) -> bytes:
    layout = document.layout()
    flow = _Flow(layout)
    for left, right in layout.header:
        flow.canvas.text(MARGIN, flow.y, left)
        flow.canvas.text(PAGE_WIDTH - MARGIN - 160, flow.y, right)
        flow.y -= LINE
    flow.y -= LINE
    flow.table(layout.table)
    flow.totals(layout)
    for section in layout.sections:
        flow.y -= LINE
        flow.need(3 * LINE + 4)  # its heading never ends a page alone
        flow.canvas.text(MARGIN, flow.y, section.heading or "", size=11, bold=True)
        flow.y -= LINE
        flow.table(section)
    if layout.note:
        flow.y -= LINE
        for note_line in _wrap(layout.note, 90):
            flow.need(LINE)
            flow.canvas.text(MARGIN, flow.y, note_line, size=9)
            flow.y -= LINE
    count = len(flow.pages)
    for index, canvas in enumerate(flow.pages):
        canvas.text(MARGIN, MARGIN - 20, f"Page {index + 1} of {count}", size=8)
    return _assemble([canvas.content() for canvas in flow.pages])


class _Flow:
    """Places rows top down and starts a page, under the title and the table's column
    headings again, when the next row would not fit."""

    def __init__(self, layout: Layout) -> None:
        self._layout = layout
        self.pages: list[_Canvas] = []
        self.y: float = TOP
        self._new_page()

    @property
    def canvas(self) -> "_Canvas":
        return self.pages[-1]

    def _new_page(self) -> None:
        canvas = _Canvas()
        canvas.text(MARGIN, TOP, self._layout.title, size=18, bold=True)
        canvas.text(PAGE_WIDTH - MARGIN - 120, TOP, self._layout.status.upper(), size=12, bold=True)
        self.pages.append(canvas)
        self.y = TOP - 2 * LINE

    def need(self, height: float, table: Table | None = None) -> None:
        if self.y - height < BOTTOM:
            self._new_page()
            if table is not None:
                self._headings(table)

    def table(self, table: Table) -> None:
        self.need(2 * LINE + 4)
        self._headings(table)
        positions = _positions(len(table.columns))
        width = positions[1] - positions[0] if len(positions) > 1 else PAGE_WIDTH
        for row in table.rows:
            self.need(LINE, table)
            # The first column is the free text; the rest are short numbers and codes.
            cells = (_clip(row[0], max(8, round(width / 6))), *row[1:])
            for x, cell in zip(positions, cells, strict=True):
                self.canvas.text(x, self.y, cell)
            self.y -= LINE

    def _headings(self, table: Table) -> None:
        for x, heading in zip(_positions(len(table.columns)), table.columns, strict=True):
            self.canvas.text(x, self.y, heading, bold=True)
        self.y -= 4
        self.canvas.rule(MARGIN, self.y, PAGE_WIDTH - MARGIN)
        self.y -= LINE

    def totals(self, layout: Layout) -> None:
        # Kept together: a total is read against the ones above it.
        self.need(LINE // 2 + LINE * len(layout.totals))
        self.canvas.rule(MARGIN, self.y + LINE - 4, PAGE_WIDTH - MARGIN)
        self.y -= LINE // 2
        for total in layout.totals:
            self.canvas.text(TOTAL_LABEL_X, self.y, total.label, bold=total.strong)
            self.canvas.text(TOTAL_AMOUNT_X, self.y, total.amount)
            self.y -= LINE


def _positions(columns: int) -> tuple[float, ...]:
    if columns == len(LINE_TABLE):
        return LINE_TABLE
    step = (PAGE_WIDTH - 2 * MARGIN) / columns
    return tuple(MARGIN + i * step for i in range(columns))


class _Canvas:
    def __init__(self) -> None:
        self._ops: list[bytes] = []

    def text(self, x: float, y: float, text: str, *, size: int = 10, bold: bool = False) -> None:
        font = b"/F2" if bold else b"/F1"
        self._ops.append(b"BT %s %d Tf %.1f %.1f Td (%s) Tj ET" % (font, size, x, y, _escape(text)))

    def rule(self, x1: float, y: float, x2: float) -> None:
        self._ops.append(b"0.5 w %.1f %.1f m %.1f %.1f l S" % (x1, y, x2, y))

    def content(self) -> bytes:
        return b"\n".join(self._ops)


def _escape(text: str) -> bytes:
    # WinAnsi covers Latin text; anything else becomes "?" rather than breaking the file.
    raw = text.encode("cp1252", errors="replace")
    return (
        raw.replace(b"\\", b"\\\\")
        .replace(b"(", b"\\(")
        .replace(b")", b"\\)")
        .replace(b"\r", b" ")
        .replace(b"\n", b" ")
    )


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _wrap(text: str, width: int) -> list[str]:
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        current = ""
        for word in paragraph.split():
            if current and len(current) + 1 + len(word) > width:
                lines.append(current)
                current = word
            else:
                current = f"{current} {word}".strip()
        lines.append(current[:width])
    return lines


def _assemble(pages: list[bytes]) -> bytes:
    """Objects: 1 catalog, 2 page tree, 3-4 fonts, then a page and its content per page."""
    kids = [5 + 2 * i for i in range(len(pages))]
    objects: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [%s] /Count %d >>"
        % (b" ".join(b"%d 0 R" % k for k in kids), len(pages)),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>",
    ]
    for kid, content in zip(kids, pages, strict=True):
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] "
            b"/Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> /Contents %d 0 R >>"
            % (PAGE_WIDTH, PAGE_HEIGHT, kid + 1)
        )
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content))
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)
