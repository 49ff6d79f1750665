"""The public page of a finalized invoice: what its customer sees at hostedUrl."""

from html import escape

from tenvoice.invoices.document import InvoiceDocument, Table

# The token in the URL is the only key to the page: keep it out of Referer headers, caches
# and search indexes, and let the page load nothing from anywhere.
HEADERS = {
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "private, no-store",
    "X-Robots-Tag": "noindex, nofollow",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
    "X-Content-Type-Options": "nosniff",
}

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:760px;margin:2rem auto;padding:0 1rem;color:#222}
header{display:flex;justify-content:space-between;align-items:baseline}
.status{font-weight:600;text-transform:uppercase;letter-spacing:.05em}
table{width:100%;border-collapse:collapse;margin:1.5rem 0}
th,td{padding:.4rem;border-bottom:1px solid #ddd;text-align:left}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.totals td{border:none}.due td{font-weight:700;border-top:2px solid #222}
"""


def render_page(document: InvoiceDocument, pdf_href: str) -> str:
    e = escape
    rows = "".join(
        f"<tr><td>{e(line.description)}</td><td class=n>{e(line.quantity)}</td>"
        f"<td class=n>{e(line.unit_price)}</td><td class=n>{e(line.tax_rate)}%</td>"
        f"<td class=n>{e(line.total)}</td></tr>"
        for line in document.lines
    )
    totals = document.totals()
    footer = "".join(
        f"<tr class='{'due' if total is totals[-1] else 'totals'}'>"
        f"<td colspan=4 class=n>{e(total.label)}</td><td class=n>{e(total.amount)}</td></tr>"
        for total in totals
    )
    sections = "".join(_section(section) for section in document.sections())
    memo = f"<p>{e(document.memo)}</p>" if document.memo else ""
    title = f"Invoice {e(document.number or '')} from {e(document.seller)}"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>{title}</title><style>{_STYLE}</style></head>
<body><header><h1>Invoice {e(document.number or "")}</h1>
<span class=status>{e(document.status)}</span></header>
<p>From <strong>{e(document.seller)}</strong> to <strong>{e(document.customer_name)}</strong>
({e(document.customer_email)})</p>
<p>Issued {e(document.issue_date)} · Due {e(document.due_date)}</p>
<table><thead><tr><th>Description</th><th class=n>Qty</th><th class=n>Unit price</th>
<th class=n>Tax</th><th class=n>Total</th></tr></thead>
<tbody>{rows}</tbody><tfoot>{footer}</tfoot></table>
{sections}{memo}<p><a href="{e(pdf_href)}">Download PDF</a></p></body></html>
"""


def _section(table: Table) -> str:
    e = escape
    # Every column after the first is a number, a date or a status: aligned like the amounts.
    head = "".join(
        f"<th{' class=n' if i else ''}>{e(column)}</th>" for i, column in enumerate(table.columns)
    )
    body = "".join(
        "<tr>"
        + "".join(f"<td{' class=n' if i else ''}>{e(cell)}</td>" for i, cell in enumerate(row))
        + "</tr>"
        for row in table.rows
    )
    return (
        f"<h2>{e(table.heading or '')}</h2>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>\n"
    )
