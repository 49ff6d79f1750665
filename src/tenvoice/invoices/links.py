"""An invoice's public link (hostedUrl): its token is derived, never stored.

token = HMAC-SHA256 under the secrets key's "hosted-invoice-link" subkey of the tenant's and
the invoice's ids (16 bytes each, so the pair reads one way only), in URL-safe base64. The
same invoice always gets the same link, with nothing to keep but the token's hash, which
`hosted_invoice_links` holds for the public lookup.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ForeignKeyConstraint, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from tenvoice.platform.db import Base, utcnow
from tenvoice.platform.tokens import DerivedTokens

PURPOSE = "hosted-invoice-link"


class LinkTokens:
    __slots__ = ("_tokens",)

    def __init__(self, secrets_key: str) -> None:
        self._tokens = DerivedTokens(secrets_key, PURPOSE)

    def token(self, tenant_id: uuid.UUID, invoice_id: uuid.UUID) -> str:
        return self._tokens.token(tenant_id.bytes + invoice_id.bytes)


@dataclass(frozen=True, slots=True)
class HostedLinks:
    """What a response needs to hand out links: where customers reach us, and the key."""

    base: str
    tokens: LinkTokens

    def url(self, tenant_id: uuid.UUID, invoice_id: uuid.UUID) -> str:
        return f"{self.base}/hosted/invoices/{self.tokens.token(tenant_id, invoice_id)}"


class HostedInvoiceLink(Base):
    """Finds the invoice behind a public link before any tenant is known.

    A platform table like `api_keys`: it holds only the SHA-256 of the link's token, so a
    copy of it opens no invoice. An invoice may have more than one link: the one derived from
    its ids (links.py), and one minted at random before links were derived, still valid.
    """

    __tablename__ = "hosted_invoice_links"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "invoice_id"], ["invoices.tenant_id", "invoices.id"], ondelete="CASCADE"
        ),
        Index("ix_hosted_invoice_links_token_hash", "token_hash", unique=True),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    invoice_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
