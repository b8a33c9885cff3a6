"""Group commit for SQLite's one writer: writes that arrive together share one transaction.

SQLite has one writer at a time, and each commit writes every page its transaction dirtied to the WAL, so under
concurrent requests committing one by one costs more than the writes themselves, and each request waits for every
other one's commit. Instead, the first request to take the writer's lock (`app.db.write_lock`) becomes the leader:
it writes every item waiting at that moment in one transaction and hands each its own answer. Nobody is answered
before that transaction committed, so an acknowledged write is a stored write. Used for usage batches
(app.store) and webhook deliveries (app.jobs); PostgreSQL takes concurrent transactions as they come.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from app.db import write_lock

Item = TypeVar("Item")
Answer = TypeVar("Answer")


@dataclass(eq=False)
class _Pending(Generic[Item, Answer]):
    item: Item
    answer: Answer | None = None
    done: bool = False
    error: BaseException | None = None


class GroupCommit(Generic[Item, Answer]):
    def __init__(self, write: Callable[[Session, Item], Answer]) -> None:
        self._write = write
        self._queue_lock = threading.Lock()
        self._queue: list[_Pending[Item, Answer]] = []

    def submit(self, factory: sessionmaker[Session], item: Item) -> Answer:
        """Write `item` with whatever else waits (in one transaction) and return its own answer."""
        pending: _Pending[Item, Answer] = _Pending(item)
        with self._queue_lock:
            self._queue.append(pending)
        with write_lock(factory):  # the leader is whoever takes the database's write lock first
            if not pending.done and pending.error is None:
                with self._queue_lock:
                    group, self._queue = self._queue, []
                self._write_group(factory, group)
        if pending.error is not None:
            raise pending.error
        return pending.answer  # type: ignore[return-value]

    def _write_group(self, factory: sessionmaker[Session], group: list[_Pending[Item, Answer]]) -> None:
        try:
            with factory() as session, session.begin():
                answers = [self._write(session, pending.item) for pending in group]
        except BaseException as error:
            for pending in group:
                pending.error = error
            raise
        for pending, answer in zip(group, answers, strict=True):
            pending.answer, pending.done = answer, True


_GROUPS: dict[tuple[int, Any], GroupCommit[Any, Any]] = {}
_GROUPS_LOCK = threading.Lock()


def group_for(factory: sessionmaker[Session], write: Callable[[Session, Item], Answer]) -> GroupCommit[Item, Answer]:
    """One group committer per database engine of this process and kind of write."""
    key = (id(factory.kw["bind"]), write)
    with _GROUPS_LOCK:
        return _GROUPS.setdefault(key, GroupCommit(write))
