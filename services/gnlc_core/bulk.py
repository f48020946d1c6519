"""Many rows in one INSERT without SQLAlchemy's work per row: the statement is compiled once
per dialect, and the rows go as one statement: on SQLite a VALUES list, on PostgreSQL
``INSERT ... SELECT * FROM unnest($1::T[], ...)`` with one array per column (else one
``executemany``).

A delivery writes three rows (its payload, its notice, its log line) and SQLAlchemy's
``execute(statement, [dict, ...])`` spent about 30 us of CPU per delivery turning the
dictionaries into parameters (the SQL statements' share of a webhook drain's profile);
the same rows as tuples cost a third of that. Values still go through each column type's
bind processor (SQLite keeps instants as text, as SQLAlchemy writes them), so what is
stored is the same either way and SQLAlchemy reads it back as before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import Table, bindparam
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

#: What a dialect's ``insert(table)`` is given after its values: ``on_conflict_...``.
Conflict = Callable[[Any], Any]


Processor = Callable[[Any], Any]

#: The column types PostgreSQL gets as arrays (``unnest``); a statement with another type
#: goes as an ``executemany``.
_ARRAY_TYPES = frozenset(
    {"VARCHAR", "TEXT", "INTEGER", "BIGINT", "SMALLINT", "FLOAT", "BOOLEAN"}
    | {"TIMESTAMP WITH TIME ZONE", "TIMESTAMP WITHOUT TIME ZONE", "DOUBLE PRECISION"}
)


#: Parameters in one SQLite statement (SQLite's own limit is 32,766 since 3.32).
_SQLITE_VARIABLES = 30_000


class _Compiled:
    def __init__(
        self,
        sql: str,
        steps: list[tuple[int, Processor | None]],
        group: str | None = None,
        arrays: str | None = None,
    ) -> None:
        self.sql = sql
        #: the statement's parameters in its order: a row's position, the type's processor
        self.steps = steps
        #: the one row's ``(?, ?, ...)`` in ``sql``, when rows go as one VALUES list (SQLite)
        self.group = group
        #: the statement with one array per column (PostgreSQL), when its types allow
        self.arrays = arrays
        self._many: dict[int, str] = {}

    def many(self, rows: int) -> str:
        """``sql`` with a VALUES list of ``rows`` rows."""
        found = self._many.get(rows)
        if found is None:
            assert self.group is not None
            if len(self._many) > 64:
                self._many.clear()
            found = self._many[rows] = self.sql.replace(
                self.group, ", ".join([self.group] * rows), 1
            )
        return found


def _processed(values: list[Any], process: Processor) -> list[Any]:
    """``process`` applied to each value, once per distinct value."""
    done: dict[Any, Any] = {}
    try:
        return [done[v] if v in done else done.setdefault(v, process(v)) for v in values]
    except TypeError:  # an unhashable value (a JSON document): one by one
        return [process(v) for v in values]


class BulkInsert:
    """``INSERT INTO table (columns) VALUES (...)`` [``conflict``] for rows of ``columns``'
    values, in that order (see the module)."""

    def __init__(
        self,
        table: Table,
        columns: Sequence[str],
        *,
        conflict: Conflict | None = None,
        key: Sequence[str] | None = None,
    ) -> None:
        """``key``: the columns ``conflict`` updates on (``ON CONFLICT (key) DO UPDATE``):
        PostgreSQL updates a row once per statement, so rows that share a key go one by
        one (an ``executemany``), in their order, as they always did."""
        for name in [*columns, *(key or [])]:
            if name not in table.c:
                raise ValueError(f"{table.name} has no column {name}")
        self._table = table
        self._columns = list(columns)
        self._conflict = conflict
        self._key = [self._columns.index(name) for name in key] if key else None
        self._compiled: dict[str, _Compiled] = {}

    async def __call__(self, connection: AsyncConnection, rows: Iterable[Sequence[Any]]) -> None:
        compiled = self._compile(connection.dialect)
        rows = list(rows)
        # column by column: a processed value is worked out once per batch (a batch's rows
        # mostly share their instant), and the rows are tuples zipped from the columns
        columns: list[list[Any]] = []
        for i, process in compiled.steps:
            values = [row[i] for row in rows]
            columns.append(values if process is None else _processed(values, process))
        if not rows:
            return
        if compiled.arrays is not None and self._unique(rows):
            # PostgreSQL: one statement, one array per column (about a third less of the
            # server's CPU per row than a row's Bind and Execute each)
            await connection.exec_driver_sql(compiled.arrays, tuple(columns))
            return
        parameters = list(zip(*columns, strict=True))
        if compiled.group is None:
            await connection.exec_driver_sql(compiled.sql, parameters)
            return
        # SQLite: the rows as one statement's VALUES list each chunk, not an executemany
        # (which hands the interpreter lock back and forth with the event loop at each row)
        size = max(1, _SQLITE_VARIABLES // len(compiled.steps))
        for start in range(0, len(parameters), size):
            chunk = parameters[start : start + size]
            flat = tuple(value for row in chunk for value in row)
            await connection.exec_driver_sql(compiled.many(len(chunk)), flat)

    def _unique(self, rows: list[Sequence[Any]]) -> bool:
        """Whether no two of ``rows`` share a key (always, without one)."""
        if self._key is None:
            return True
        key = self._key
        return len({tuple(row[i] for i in key) for row in rows}) == len(rows)

    def _compile(self, dialect: Dialect) -> _Compiled:
        found = self._compiled.get(dialect.name)
        if found is not None:
            return found
        insert = postgresql.insert if dialect.name == "postgresql" else sqlite.insert
        statement = insert(self._table).values({c: bindparam(c) for c in self._columns})
        if self._conflict is not None:
            statement = self._conflict(statement)
        compiled = statement.compile(dialect=dialect)
        names = list(compiled.positiontup or [])
        if sorted(names) != sorted(self._columns):
            raise ValueError(f"{self._table.name}: parameters {names} are not {self._columns}")
        steps: list[tuple[int, Processor | None]] = [
            (
                self._columns.index(name),
                self._table.c[name].type.dialect_impl(dialect).bind_processor(dialect),
            )
            for name in names
        ]
        sql = str(compiled)
        group = None
        if dialect.name == "sqlite" and dialect.paramstyle == "qmark":
            group = "(" + ", ".join(["?"] * len(names)) + ")"
            if sql.count(group) != 1 or sql.count("?") != len(names):
                group = None  # not the plain form this expects: executemany
        arrays = _arrays(sql, len(names)) if dialect.name == "postgresql" else None
        found = self._compiled[dialect.name] = _Compiled(sql, steps, group, arrays)
        return found


def _arrays(sql: str, count: int) -> str | None:
    """PostgreSQL's ``INSERT ... VALUES ($1::T1, ...) [ON CONFLICT ...] [RETURNING ...]`` as
    ``INSERT ... SELECT * FROM unnest($1::T1[], ...) [ON CONFLICT ...]``, or None when it is
    not of that form or a type is not one of ``_ARRAY_TYPES``."""
    start = sql.find(" VALUES (")
    end = sql.find(")", start)
    if start < 0 or end < 0:
        return None
    items = sql[start + len(" VALUES (") : end].split(", ")
    if len(items) != count:
        return None
    arrays = []
    for position, item in enumerate(items, 1):
        name, _, cast = item.partition("::")
        if name != f"${position}" or cast not in _ARRAY_TYPES:
            return None
        arrays.append(f"{name}::{cast}[]")
    rest = sql[end + 1 :].split(" RETURNING ", 1)[0]  # nothing is read back
    # SQLAlchemy's own statement for our tables, its parameters as they were: no values
    return f"{sql[:start]} SELECT * FROM unnest({', '.join(arrays)}){rest}"  # noqa: S608
