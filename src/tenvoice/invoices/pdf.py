"""An invoice as a PDF document, written directly (PDF 1.4, the standard Helvetica fonts).

Invoices are text and rules on A4 pages; a hand-written page description keeps the service
free of a layout engine and renders a 500-line invoice in milliseconds.
"""

from collections.abc import Iterator

from tenvoice.invoices.document import DocumentLine, InvoiceDocument

PAGE_WIDTH, PAGE_HEIGHT = 595, 842  # A4 in points
MARGIN = 50
LINE = 14
ROWS_PER_PAGE = 42


def render(document: InvoiceDocument) -> bytes:
    pages = [
        _page_content(document, chunk, index, total) for index, chunk, total in _chunks(document)
    ]
    return _assemble(pages)


def _chunks(document: InvoiceDocument) -> Iterator[tuple[int, list[DocumentLine], int]]:
    lines = document.lines
    count = max(1, -(-len(lines) // ROWS_PER_PAGE))
    for index in range(count):
        yield index, lines[index * ROWS_PER_PAGE : (index + 1) * ROWS_PER_PAGE], count


def _page_content(
    document: InvoiceDocument, lines: list[DocumentLine], index: int, pages: int
) -> bytes:
    canvas = _Canvas()
    top = PAGE_HEIGHT - MARGIN
    title = f"Invoice {document.number}" if document.number else "Draft invoice"
    canvas.text(MARGIN, top, title, size=18, bold=True)
    canvas.text(PAGE_WIDTH - MARGIN - 120, top, document.status.upper(), size=12, bold=True)
    y = top - 2 * LINE
    if index == 0:
        for left, right in (
            (f"From: {document.seller}", f"Issued: {document.issue_date}"),
            (f"Bill to: {document.customer_name}", f"Due: {document.due_date}"),
            (document.customer_email, f"Currency: {document.currency}"),
        ):
            canvas.text(MARGIN, y, left)
            canvas.text(PAGE_WIDTH - MARGIN - 160, y, right)
            y -= LINE
        y -= LINE
    columns = (MARGIN, 300, 360, 440, 500)
    for x, heading in zip(
        columns, ("Description", "Qty", "Unit price", "Tax %", "Total"), strict=True
    ):
        canvas.text(x, y, heading, bold=True)
    y -= 4
    canvas.rule(MARGIN, y, PAGE_WIDTH - MARGIN)
    y -= LINE
    for line in lines:
        cells = (
            _clip(line.description, 42),
            line.quantity,
            line.unit_price,
            line.tax_rate,
            line.total,
        )
        for x, cell in zip(columns, cells, strict=True):
            canvas.text(x, y, cell)
        y -= LINE
    if index == pages - 1:
        canvas.rule(MARGIN, y + LINE - 4, PAGE_WIDTH - MARGIN)
        y -= LINE // 2
        for label, amount in (
            ("Subtotal", document.subtotal),
            ("Tax", document.tax),
            ("Total", document.total),
            ("Paid", document.amount_paid),
            ("Amount due", document.amount_due),
        ):
            canvas.text(400, y, label, bold=label in ("Total", "Amount due"))
            canvas.text(500, y, f"{amount} {document.currency}")
            y -= LINE
        if document.memo:
            y -= LINE
            for memo_line in _wrap(document.memo, 90)[:8]:
                canvas.text(MARGIN, y, memo_line, size=9)
                y -= LINE
    canvas.text(MARGIN, MARGIN - 20, f"Page {index + 1} of {pages}", size=8)
    return canvas.content()


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
