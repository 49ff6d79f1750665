"""A credit note as a document for people: its own PDF, laid out like the invoice's."""

import uuid
from dataclasses import dataclass

from sqlalchemy import and_, select

from tenvoice.credits.models import Refund
from tenvoice.credits.queries import get_credit_note
from tenvoice.credits.schemas import CreditNoteOut
from tenvoice.customers.models import Customer
from tenvoice.invoices import pdf
from tenvoice.invoices.document import (
    LINE_COLUMNS,
    DocumentLine,
    Layout,
    RefundEntry,
    Table,
    Total,
    nonzero,
    refund_section,
)
from tenvoice.invoices.models import Invoice
from tenvoice.invoices.queries import refund_entries
from tenvoice.platform.db import ReadSession
from tenvoice.tenants.models import Tenant


@dataclass(frozen=True, slots=True)
class CreditNoteDocument:
    seller: str
    invoice_number: str
    customer_name: str
    customer_email: str
    note: CreditNoteOut
    refunds: list[RefundEntry]

    def layout(self) -> Layout:
        note = self.note
        return Layout(
            title=f"Credit note {note.number}",
            status=note.status,
            header=self._header(),
            table=Table(None, LINE_COLUMNS, [line.cells() for line in self._lines()]),
            totals=self._totals(),
            sections=refund_section(self.refunds, note.currency),
            note=note.memo,
        )

    def _header(self) -> list[tuple[str, str]]:
        note = self.note
        header = [
            (f"From: {self.seller}", f"Issued: {note.created_at.date().isoformat()}"),
            (f"Credit to: {self.customer_name}", f"Invoice: {self.invoice_number}"),
            (self.customer_email, f"Currency: {note.currency}"),
        ]
        reason = f"Reason: {note.reason.replace('_', ' ').capitalize()}" if note.reason else ""
        voided = f"Voided: {note.voided_at.date().isoformat()}" if note.voided_at else ""
        if reason or voided:
            header.append((reason, voided))
        return header

    def _lines(self) -> list[DocumentLine]:
        # A line credited by amount has no quantity: its unit amount is the whole of it.
        return [
            DocumentLine(
                line.description,
                line.quantity or "",
                line.unit_amount,
                line.tax_rate,
                line.total,
            )
            for line in self.note.lines
        ]

    def _totals(self) -> list[Total]:
        """The amounts, then how the total went back to the customer (the parts add up to it)."""
        note = self.note
        split = [
            ("Credited to amount due", note.pre_payment_amount),
            ("Refunded", note.refund_amount),
            ("Credited to balance", note.credit_amount),
            ("Returned out of band", note.out_of_band_amount),
        ]
        return [
            Total("Subtotal", f"{note.subtotal} {note.currency}"),
            Total("Tax", f"{note.tax} {note.currency}"),
            Total("Total", f"{note.total} {note.currency}", strong=True),
            *(
                Total(label, f"{amount} {note.currency}")
                for label, amount in split
                if nonzero(amount)
            ),
        ]


async def credit_note_document(
    session: ReadSession, credit_note_id: uuid.UUID
) -> CreditNoteDocument:
    note = await get_credit_note(session, credit_note_id)
    parties = (
        await session.execute(
            select(Invoice.number, Customer.name, Customer.email, Tenant.name.label("seller"))
            .select_from(Invoice)
            .join(
                Customer,
                and_(Customer.tenant_id == Invoice.tenant_id, Customer.id == Invoice.customer_id),
            )
            .join(Tenant, Tenant.id == Invoice.tenant_id)
            .where(Invoice.id == note.invoice_id)
        )
    ).one()
    return CreditNoteDocument(
        seller=parties.seller,
        # Only finalized invoices take credit notes, so the invoice always has its number.
        invoice_number=parties.number or "",
        customer_name=parties.name,
        customer_email=parties.email,
        note=note,
        refunds=await refund_entries(session, Refund.credit_note_id == credit_note_id),
    )


async def credit_note_pdf(session: ReadSession, credit_note_id: uuid.UUID) -> tuple[bytes, str]:
    """The PDF and the name it is served under."""
    document = await credit_note_document(session, credit_note_id)
    return pdf.render(document), document.note.number
