"""Offset and cursor pagination over any sortable ORM select.

Cursor pages are keyset pages: the cursor carries the last row's sort value and id, and the
next page is `WHERE (sort, id) > (:value, :id)` on an index led by `tenant_id`, so a page at
depth 1,000 costs what the first one does and rows inserted meanwhile neither repeat nor
shift the walk.
"""

import base64
import binascii
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

import orjson
from fastapi import Query
from sqlalchemy import ColumnElement, Select, and_, func, literal, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from tenvoice.platform.errors import OffsetTooDeep, ValidationFailed
from tenvoice.platform.schemas import OutputModel
from tenvoice.platform.tenancy import TenantReads

T = TypeVar("T")
# Pages are read through the ORM session, or past it for the hottest lists (TenantReads).
Reader = AsyncSession | TenantReads
SortKind = Literal["datetime", "date", "int", "str"]


@dataclass(frozen=True, slots=True)
class OffsetPage:
    page: int
    page_size: int
    include_total: bool


@dataclass(frozen=True, slots=True)
class CursorPage:
    limit: int
    cursor: str | None
    include_total: bool = False


PageRequest = OffsetPage | CursorPage


# An OFFSET costs every row it skips: deeper than this, pages are read by cursor.
MAX_OFFSET_ROWS = 10_000
_ONE_STYLE = "Offset (page, pageSize) and cursor (limit, cursor) paging do not mix: 422."


async def page_request(
    # No maximum of its own: any page past row 10,000 gets the same answer (offset_too_deep).
    page: Annotated[
        int | None,
        Query(ge=1, description=f"Offset paging; page * pageSize <= 10000. {_ONE_STYLE}"),
    ] = None,
    page_size: Annotated[
        int | None, Query(alias="pageSize", ge=1, le=100, description=_ONE_STYLE)
    ] = None,
    include_total: Annotated[bool | None, Query(alias="includeTotal")] = None,
    limit: Annotated[int | None, Query(ge=1, le=100, description=_ONE_STYLE)] = None,
    cursor: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=1024,
            description=f"`nextCursor` of the previous page, with the same sort. {_ONE_STYLE}",
        ),
    ] = None,
) -> PageRequest:
    offset_given = page is not None or page_size is not None
    if offset_given and (cursor is not None or limit is not None):
        field = "cursor" if cursor is not None else "limit"
        raise ValidationFailed(field, "use either page/pageSize or cursor/limit, not both")
    if cursor is not None or limit is not None:
        return CursorPage(limit=limit or 10, cursor=cursor, include_total=bool(include_total))
    request = OffsetPage(page or 1, page_size or 10, include_total=bool(include_total))
    if request.page * request.page_size > MAX_OFFSET_ROWS:
        raise OffsetTooDeep(
            "page",
            f"offset pages stop at row {MAX_OFFSET_ROWS} (page * pageSize); read further by "
            "cursor: ask with `limit`, then pass each page's `pagination.nextCursor` as `cursor`",
        )
    return request


class OffsetPagination(OutputModel):
    page: int
    page_size: int
    has_more: bool


class OffsetPaginationWithTotal(OffsetPagination):
    total_count: int


class CursorPagination(OutputModel):
    limit: int
    has_more: bool
    next_cursor: str | None


class CursorPaginationWithTotal(CursorPagination):
    total_count: int


Pagination = (
    OffsetPaginationWithTotal | OffsetPagination | CursorPaginationWithTotal | CursorPagination
)


class Page(OutputModel, Generic[T]):
    data: list[T]
    pagination: Pagination


@dataclass(frozen=True, slots=True)
class SortColumn:
    column: InstrumentedAttribute[Any]
    kind: SortKind
    nullable: bool = False


@dataclass(frozen=True, slots=True)
class Sort:
    """One allowed ordering: the wire name ("-dueDate"), the column, and its direction."""

    name: str
    key: SortColumn
    tiebreak: InstrumentedAttribute[Any]
    descending: bool

    def order_by(self) -> list[Any]:
        column, tiebreak = self.key.column, self.tiebreak
        if self.descending:
            first: Any = column.desc()
            tie: Any = tiebreak.desc()
        else:
            first, tie = column.asc(), tiebreak.asc()
        if self.key.nullable:
            first = first.nulls_last()
        return [first, tie]


def sorts(columns: dict[str, SortColumn], tiebreak: InstrumentedAttribute[Any]) -> dict[str, Sort]:
    """Every `name` and `-name` ordering of the given columns."""
    table = {}
    for name, key in columns.items():
        table[name] = Sort(name, key, tiebreak, descending=False)
        table[f"-{name}"] = Sort(f"-{name}", key, tiebreak, descending=True)
    return table


@dataclass(frozen=True, slots=True)
class PageResult:
    rows: list[Any]
    pagination: Pagination


async def paginate(
    session: Reader, statement: Select[Any], sort: Sort, page: PageRequest
) -> PageResult:
    if isinstance(page, OffsetPage):
        return await _offset_page(session, statement, sort, page)
    return await _cursor_page(session, statement, sort, page)


async def _offset_page(
    session: Reader, statement: Select[Any], sort: Sort, page: OffsetPage
) -> PageResult:
    paged = (
        statement.order_by(*sort.order_by())
        .offset((page.page - 1) * page.page_size)
        .limit(page.page_size + 1)
    )
    rows = list((await session.execute(paged)).all())
    has_more = len(rows) > page.page_size
    rows = rows[: page.page_size]
    pagination: Pagination
    if page.include_total:
        pagination = OffsetPaginationWithTotal(
            page=page.page,
            page_size=page.page_size,
            has_more=has_more,
            total_count=await _count(session, statement),
        )
    else:
        pagination = OffsetPagination(page=page.page, page_size=page.page_size, has_more=has_more)
    return PageResult(rows, pagination)


async def _cursor_page(
    session: Reader, statement: Select[Any], sort: Sort, page: CursorPage
) -> PageResult:
    unpaged = statement
    if page.cursor is not None:
        value, last_id = decode_cursor(page.cursor, sort)
        statement = statement.where(_after(sort, value, last_id))
    paged = statement.order_by(*sort.order_by()).limit(page.limit + 1)
    rows = list((await session.execute(paged)).all())
    has_more = len(rows) > page.limit
    rows = rows[: page.limit]
    next_cursor = None
    if has_more:
        last = rows[-1]._mapping
        # By name: rows read past the ORM are not keyed by ORM attributes.
        next_cursor = encode_cursor(sort, last[sort.key.column.key], last[sort.tiebreak.key])
    pagination: Pagination
    if page.include_total:
        pagination = CursorPaginationWithTotal(
            limit=page.limit,
            has_more=has_more,
            next_cursor=next_cursor,
            total_count=await _count(session, unpaged),
        )
    else:
        pagination = CursorPagination(limit=page.limit, has_more=has_more, next_cursor=next_cursor)
    return PageResult(rows, pagination)


async def _count(session: Reader, statement: Select[Any]) -> int:
    """Rows matching the filters, whatever the page (what includeTotal=true asks for)."""
    count = select(func.count()).select_from(statement.order_by(None).subquery())
    total: int = (await session.execute(count)).scalar_one()
    return total


def _after(sort: Sort, value: Any, last_id: uuid.UUID) -> ColumnElement[bool]:
    column, tiebreak = sort.key.column, sort.tiebreak
    if value is None:
        # Only nullable columns have NULL cursors, and NULLs sort last: stay among them.
        beyond_id = tiebreak < last_id if sort.descending else tiebreak > last_id
        return and_(column.is_(None), beyond_id)
    pair = tuple_(column, tiebreak)
    # Typed literals, so each value is bound the way its column stores it (UUIDs and
    # datetimes are text on SQLite).
    mark = tuple_(literal(value, column.type), literal(last_id, tiebreak.type))
    beyond: ColumnElement[bool] = pair < mark if sort.descending else pair > mark
    if sort.key.nullable:
        return or_(beyond, column.is_(None))
    return beyond


def encode_cursor(sort: Sort, value: Any, last_id: uuid.UUID) -> str:
    if isinstance(value, datetime | date):
        value = value.isoformat()
    raw = orjson.dumps([sort.name, value, str(last_id)])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, sort: Sort) -> tuple[Any, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        name, value, last_id = orjson.loads(raw)
        if name != sort.name:
            raise ValidationFailed("cursor", "this cursor belongs to another sort order")
        if not isinstance(last_id, str):
            raise TypeError("cursor id is not a string")
        return _parse_value(sort.key, value), uuid.UUID(last_id)
    except ValidationFailed:
        raise
    except (ValueError, TypeError, OverflowError, binascii.Error, orjson.JSONDecodeError):
        raise ValidationFailed("cursor", "not a cursor this API issued") from None


def _parse_value(key: SortColumn, value: Any) -> Any:
    if value is None:
        if not key.nullable:
            raise ValueError("null cursor value")
        return None
    # A cursor is client input: whatever it holds must bind without error, or the client
    # gets a 500 where a 422 is due.
    if key.kind == "datetime" and isinstance(value, str):
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            raise ValueError("cursor timestamp without a zone")
        return moment.astimezone(UTC)
    if key.kind == "date" and isinstance(value, str):
        return date.fromisoformat(value)
    if key.kind == "int" and isinstance(value, int) and not isinstance(value, bool):
        if not -(2**63) <= value < 2**63:
            raise ValueError("cursor value out of range")
        return value
    if key.kind == "str" and isinstance(value, str):
        return value
    raise ValueError("cursor value of the wrong type")
