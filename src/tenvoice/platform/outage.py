"""Waiting out a database outage: longer waits each time, one log line when it starts and
one when it ends, instead of a warning on every retry."""

import logging
import random
import time

FIRST_WAIT_SECONDS = 0.5
MAX_WAIT_SECONDS = 30.0


class Outage:
    def __init__(
        self,
        log: logging.Logger,
        what: str,
        *,
        first: float = FIRST_WAIT_SECONDS,
        cap: float = MAX_WAIT_SECONDS,
    ) -> None:
        self._log = log
        self._what = what
        self._first = first
        self._cap = cap
        self._failures = 0
        self._since: float | None = None

    @property
    def ongoing(self) -> bool:
        return self._since is not None

    def failed(self, reason: str, consequence: str) -> float:
        """Note a failed attempt; how long to wait before the next one."""
        if self._since is None:
            self._since = time.monotonic()
            self._log.warning(
                "%s is unavailable (%s); %s, retrying at most every %g s until it is back",
                self._what,
                reason.strip().splitlines()[0] if reason.strip() else "no reason given",
                consequence,
                self._cap,
            )
        step: float = min(self._first * 2**self._failures, self._cap)
        self._failures += 1
        # Jittered, so that the processes an outage stopped together do not all come back
        # at the same instant.
        return step * random.uniform(0.5, 1.0)  # noqa: S311 (not a secret)

    def recovered(self) -> None:
        if self._since is not None:
            self._log.info(
                "%s is available again after %.0f s", self._what, time.monotonic() - self._since
            )
        self._since = None
        self._failures = 0
