"""The hot path's batched writes, straight to the database driver.

A commit group writes each table once, with many rows (``executemany``). Through
``Connection.execute`` every row of every batch is turned into parameters by SQLAlchemy
again (about half of what writing a row costs); here a statement is compiled once per
(dialect, columns), the bind processors (amounts as decimal strings or ``Decimal``,
booleans) are applied in one pass, and the driver's ``executemany`` gets the rows.

The ordinary path is taken whenever it would behave differently: outside a transaction,
with ``echo`` on, or with an engine event listening to statements (a test counting them).
Driver errors are raised as SQLAlchemy's, as ``Connection.execute`` raises them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.expression import Executable

__all__ = ["executemany"]

# (statement, dialect name, column keys) -> how to call the driver. Statements are module
# constants, so the cache stays small.
_cache: dict[tuple[int, str, tuple[str, ...]], tuple[Executable, _Compiled]] = {}


class _Compiled:
    """A statement compiled for one dialect and one set of row keys, and how to turn a
    row into the driver's parameters."""

    __slots__ = ("converters", "names", "positional", "processors", "sql", "values")

    def __init__(self, conn: Connection, statement: Executable, keys: tuple[str, ...]) -> None:
        compiled = statement.compile(dialect=conn.dialect, column_keys=list(keys))  # type: ignore[attr-defined]
        self.sql = str(compiled)
        self.positional = bool(compiled.positional)
        names = tuple(compiled.positiontup or ()) if self.positional else tuple(compiled.binds)
        self.names = names
        processors = {
            name: processor
            for name, processor in compiled._bind_processors.items()
            if processor is not None
        }
        # Positional: one C call picks the row's values in order (a 1-tuple for one name),
        # then only the columns that have a bind processor are converted.
        pick = itemgetter(*names) if names else (lambda row: ())
        self.values: Callable[[dict[str, Any]], tuple[Any, ...]] = (
            pick if len(names) != 1 else (lambda row: (pick(row),))
        )
        self.converters = tuple(
            (i, processors[name]) for i, name in enumerate(names) if name in processors
        )
        self.processors = processors

    def params(self, rows: Sequence[dict[str, Any]]) -> list[Any]:
        if not self.positional:
            processors, names = self.processors, self.names
            return [
                {
                    name: processors[name](row[name]) if name in processors else row[name]
                    for name in names
                }
                for row in rows
            ]
        values, converters = self.values, self.converters
        if not converters:
            return [values(row) for row in rows]
        params: list[Any] = []
        for row in rows:
            picked = list(values(row))
            for i, convert in converters:
                picked[i] = convert(picked[i])
            params.append(picked)
        return params


def _compiled(conn: Connection, statement: Executable, keys: tuple[str, ...]) -> _Compiled:
    cache_key = (id(statement), conn.dialect.name, keys)
    found = _cache.get(cache_key)
    if found is not None and found[0] is statement:
        return found[1]
    entry = _Compiled(conn, statement, keys)
    _cache[cache_key] = (statement, entry)
    return entry


def _plain(conn: Connection) -> bool:
    """Whether the ordinary ``Connection.execute`` must run (see the module)."""
    engine = conn.engine
    return (
        not conn.in_transaction()
        or bool(engine.echo)
        or bool(conn.dispatch.before_cursor_execute)
        or bool(conn.dispatch.after_cursor_execute)
    )


def executemany(conn: Connection, statement: Executable, rows: Sequence[dict[str, Any]]) -> int:
    """Run ``statement`` once per row (all rows have the same keys); the rows it matched
    (``rowcount``, summed over the rows)."""
    if not rows:
        return 0
    if _plain(conn):
        return int(conn.execute(statement, list(rows)).rowcount)
    compiled = _compiled(conn, statement, tuple(rows[0]))
    sql, params = compiled.sql, compiled.params(rows)
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    dbapi_error = conn.dialect.loaded_dbapi.Error
    try:
        cursor.executemany(sql, params)
        return int(cursor.rowcount)
    except dbapi_error as exc:
        raise DBAPIError.instance(sql, params, exc, dbapi_error, hide_parameters=True) from exc
    finally:
        cursor.close()
