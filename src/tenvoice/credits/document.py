"""A credit note as a document for people (placeholder until the PDF lands)."""

import uuid

from tenvoice.platform.db import ReadSession


async def credit_note_pdf(session: ReadSession, credit_note_id: uuid.UUID) -> tuple[bytes, str]:
    raise NotImplementedError
