"""Tenants (the businesses using tenvoice) and their API keys; managed with the admin key."""
