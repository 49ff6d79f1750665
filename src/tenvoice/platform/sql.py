from typing import Any

from sqlalchemy import ColumnElement, any_, bindparam
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


def one_of(
    dialect: str, column: InstrumentedAttribute[Any], values: list[Any]
) -> ColumnElement[bool]:
    """`column IN (values)`; on PostgreSQL as `= ANY(:array)`, one parameter whatever the count.

    An IN list binds each value separately and compiles a new statement for every list length;
    for a page of 50 invoices' lines that costs twice the query itself.
    """
    if dialect == "postgresql":
        return column == any_(bindparam(None, values, type_=postgresql.ARRAY(column.type)))
    return column.in_(values)
