"""The import's running totals, its status line on stderr and its closing summary."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import IO

# --- progress and totals ------------------------------------------------------------------------------------------

SHOWN_PLACES = 3  # lines named per rejection reason in the summary


@dataclass(slots=True)
class Totals:
    files: int = 0
    files_done: int = 0
    lines: int = 0
    lines_sent: int = 0
    requests: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    no_repository: int = 0
    failed_requests: int = 0
    oversized_lines: int = 0
    errors: Counter[str] = field(default_factory=Counter)  # the server's reason, whole → how many
    error_places: dict[str, list[str]] = field(default_factory=dict)  # reason → its first few "file:line"
    failures: list[str] = field(default_factory=list)
    unattributed_folders: set[str] = field(default_factory=set)

    def reject(self, reason: str, place: str | None) -> None:
        self.rejected += 1
        self.errors[reason] += 1
        places = self.error_places.setdefault(reason, [])
        if place is not None and len(places) < SHOWN_PLACES:
            places.append(place)

    @property
    def nothing_stored(self) -> bool:
        """Records were refused and none accepted (nor already there): the import achieved nothing."""
        return self.rejected > 0 and self.accepted == 0 and self.duplicates == 0


class Progress:
    """One status line on stderr: redrawn in place on a terminal, a plain line every few seconds otherwise."""

    def __init__(self, stream: IO[str], label: str, *, interval: float | None = None) -> None:
        self.stream = stream
        self.label = label
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.interval = interval if interval is not None else (0.1 if self.tty else 5.0)
        self.last = 0.0
        self.shown = ""

    def line(self, totals: Totals) -> str:
        return (
            f"{self.label}: files {totals.files_done}/{totals.files} · lines {totals.lines:,} · "
            f"accepted {totals.accepted:,} · duplicates {totals.duplicates:,} · rejected {totals.rejected:,}"
        )

    def update(self, totals: Totals, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < self.interval:
            return
        self.last = now
        line = self.line(totals)
        if self.tty:
            self.stream.write("\r\x1b[K" + line)
        elif line != self.shown:
            self.stream.write(line + "\n")
        self.shown = line
        self.stream.flush()

    def close(self, totals: Totals) -> None:
        self.update(totals, force=True)
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def summary(totals: Totals, *, source: str, dry_run: bool, stopped: bool = False) -> list[str]:
    """The closing summary; `stopped`: the import was cut short (what was sent before the stop is kept)."""
    verb = "Read" if dry_run else "Imported"
    first = f"{verb} {totals.files_done} {source} transcript file(s)"
    if stopped:
        first = f"Stopped after {totals.files_done} of {totals.files} {source} transcript file(s)"
    lines = [
        f"{first}, {totals.lines:,} lines ({totals.lines_sent:,} of them sent, in {totals.requests} request(s)).",
    ]
    if dry_run:
        lines.append(
            f"Dry run, nothing uploaded: {totals.accepted:,} usage record(s) would be sent, "
            f"{totals.rejected:,} would be rejected."
        )
    else:
        lines.append(
            f"Records: {totals.accepted:,} accepted, {totals.duplicates:,} duplicates (already imported), "
            f"{totals.rejected:,} rejected."
        )
    if totals.no_repository:
        folders = sorted(totals.unattributed_folders)
        shown = ", ".join(folders[:5]) + (f" and {len(folders) - 5} more" if len(folders) > 5 else "")
        lines.append(
            f"{totals.no_repository:,} record(s) had no repository"
            + (f" (their folder is gone, has no origin remote, or is not named: {shown})" if shown else "")
            + f". Import them from the checkout they belong to with `tokentrail import {source} PATH "
            "--repo OWNER/NAME`."
        )
    for error, count in totals.errors.most_common(5):
        places = totals.error_places.get(error, [])
        lines.extend(f"  {place}: {error}" for place in places)
        if count > len(places):
            more = f"… and {count - len(places):,} more" if places else f"rejected {count:,}×"
            lines.append(f"  {more}: {error}")
    if totals.oversized_lines:
        lines.append(f"{totals.oversized_lines:,} line(s) larger than one request were left out.")
    if totals.failed_requests:
        lines.append(f"{totals.failed_requests} request(s) failed; first error: {totals.failures[0]}")
    return lines
