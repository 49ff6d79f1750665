"""The activity timeline: one row per domain event, written in the event's own transaction."""
