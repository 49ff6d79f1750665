"""Outbound webhooks: the tenant's endpoints, fan-out of its events, signed delivery."""
