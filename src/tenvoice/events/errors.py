from tenvoice.platform.errors import NotFound


class EventNotFound(NotFound):
    code = "event_not_found"
    title = "Event not found"
