"""Counts the network round trips psycopg2 really makes, including its implicit BEGIN."""

from __future__ import annotations

from contextlib import contextmanager

from psycopg2.extensions import TRANSACTION_STATUS_IDLE
from sqlalchemy import event


@contextmanager
def count_round_trips(engine):
    trips: list[str] = []

    def before_execute(conn, cursor, statement, *args):
        dbapi = cursor.connection
        if not dbapi.autocommit and dbapi.get_transaction_status() == TRANSACTION_STATUS_IDLE:
            trips.append("BEGIN")  # psycopg2 opens the transaction with its own round trip
        trips.append(statement.split()[0].upper())

    def on_end(name):
        def listener(conn):
            dbapi = conn.connection.dbapi_connection
            if dbapi.get_transaction_status() != TRANSACTION_STATUS_IDLE:
                trips.append(name)
        return listener

    def on_reset(dbapi, record, reset_state):
        if dbapi.get_transaction_status() != TRANSACTION_STATUS_IDLE:
            trips.append("ROLLBACK")  # the pool's reset-on-return

    listeners = [(engine, "before_cursor_execute", before_execute), (engine, "commit", on_end("COMMIT")),
                 (engine, "rollback", on_end("ROLLBACK")), (engine.pool, "reset", on_reset)]
    for target, name, fn in listeners:
        event.listen(target, name, fn)
    try:
        yield trips
    finally:
        for target, name, fn in listeners:
            event.remove(target, name, fn)
