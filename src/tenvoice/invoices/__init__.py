"""Invoices: drafts, finalization and numbering, the status machine, and their money."""
