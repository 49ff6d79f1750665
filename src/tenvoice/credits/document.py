"""A credit note as a document for people (placeholder until the PDF lands)."""

import uuid

from tenvoice.credits.queries import get_credit_note
from tenvoice.platform.db import ReadSession


async def credit_note_pdf(session: ReadSession, credit_note_id: uuid.UUID) -> tuple[bytes, str]:
    note = await get_credit_note(session, credit_note_id)
    raise NotImplementedError(note.number)
