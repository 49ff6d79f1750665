from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import DeclarativeBase, InstrumentedAttribute


def insert_into(dialect: str, model: type[DeclarativeBase]) -> Any:
    """An INSERT with the dialect's ON CONFLICT clauses (both databases spell them alike)."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(model)


def contains(column: InstrumentedAttribute[Any], text: str) -> ColumnElement[bool]:
    """Case-insensitive substring match with the user's % and _ taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.ilike(f"%{escaped}%", escape="\\")
