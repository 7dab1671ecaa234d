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
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.expression import Executable

__all__ = ["executemany"]

# (statement, dialect name, column keys) -> (sql, names in order, processors by name,
# positional). Statements are module constants, so the cache stays small.
_Compiled = tuple[str, tuple[str, ...], dict[str, Callable[[Any], Any]], bool]
_cache: dict[tuple[int, str, tuple[str, ...]], tuple[Executable, _Compiled]] = {}


def _compiled(conn: Connection, statement: Executable, keys: tuple[str, ...]) -> _Compiled:
    dialect = conn.dialect
    cache_key = (id(statement), dialect.name, keys)
    found = _cache.get(cache_key)
    if found is not None and found[0] is statement:
        return found[1]
    compiled = statement.compile(dialect=dialect, column_keys=list(keys))  # type: ignore[attr-defined]
    names = tuple(compiled.positiontup or ()) if compiled.positional else tuple(compiled.binds)
    processors = {
        name: processor
        for name, processor in compiled._bind_processors.items()
        if processor is not None
    }
    entry: _Compiled = (str(compiled), names, processors, bool(compiled.positional))
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
    sql, names, processors, positional = _compiled(conn, statement, tuple(rows[0]))
    params: list[Any]
    if positional:
        params = [
            tuple(
                processors[name](row[name]) if name in processors else row[name] for name in names
            )
            for row in rows
        ]
    else:
        params = [
            {
                name: processors[name](row[name]) if name in processors else row[name]
                for name in names
            }
            for row in rows
        ]
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    dbapi_error = conn.dialect.loaded_dbapi.Error
    try:
        cursor.executemany(sql, params)
        return int(cursor.rowcount)
    except dbapi_error as exc:
        raise DBAPIError.instance(sql, params, exc, dbapi_error, hide_parameters=True) from exc
    finally:
        cursor.close()
