"""The tenant's event log: one row per domain event, with a snapshot of its entity, written in
the change's own transaction. Timelines are views of it; outbound webhooks fan out from it."""
