"""Many rows in one INSERT without SQLAlchemy's work per row: the statement is compiled once
per dialect, each row is a tuple in the statement's own parameter order, and the driver
runs it as one ``executemany``.

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


#: Parameters in one SQLite statement (SQLite's own limit is 32,766 since 3.32).
_SQLITE_VARIABLES = 30_000


class _Compiled:
    def __init__(
        self, sql: str, steps: list[tuple[int, Processor | None]], group: str | None = None
    ) -> None:
        self.sql = sql
        #: the statement's parameters in its order: a row's position, the type's processor
        self.steps = steps
        #: the one row's ``(?, ?, ...)`` in ``sql``, when rows go as one VALUES list (SQLite)
        self.group = group
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
        self, table: Table, columns: Sequence[str], *, conflict: Conflict | None = None
    ) -> None:
        for name in columns:
            if name not in table.c:
                raise ValueError(f"{table.name} has no column {name}")
        self._table = table
        self._columns = list(columns)
        self._conflict = conflict
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
        parameters = list(zip(*columns, strict=True))
        if not parameters:
            return
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
        found = self._compiled[dialect.name] = _Compiled(sql, steps, group)
        return found
