"""tenvoice: a multi-tenant invoicing API."""

__version__ = "0.1.0"
