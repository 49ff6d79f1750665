"""Plumbing shared by every capability; no business rules live here."""
