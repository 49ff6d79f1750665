"""Assertions on RFC 9457 problem responses, shared by the HTTP tests."""

from typing import Any

import httpx

PROBLEM_FIELDS = {"type", "title", "status", "detail", "code", "requestId"}


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The response is a problem+json of this status and code; returns its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    assert body.keys() >= PROBLEM_FIELDS, body
    assert body["status"] == status
    assert body["requestId"] == response.headers["x-request-id"]
    assert isinstance(body["title"], str)
    assert body["title"]
    assert isinstance(body["detail"], str)
    assert body["detail"]
    return body


def error_fields(body: dict[str, Any]) -> set[str]:
    return {error["field"] for error in body["errors"]}
