"""How many items a batch body holds, counted before any item is parsed. Pure.

DESIGN §9 refuses a batch over the record limit before its records are examined. Parsing first and counting
after let a 10 MB body of `{}` items cost seconds of CPU and hundreds of MB (every item decoded, checked and
rejected). So the structure above the items is walked here, each item is decoded on its own and dropped at once,
and the walk stops as soon as the count passes the limit: a hostile body costs at most `limit + 1` small decodes.

The count is what the source's parser counts as records, rejections and skips (one per item or line), or less
where the body is unreadable (the parser reports that): it never refuses a body the parser would accept, with
one deliberate exception, a JSON object that repeats a wrapper key, whose first array counts too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from enum import Enum

_WHITESPACE = re.compile(r"[ \t\n\r]*")
# A line as `bytes.splitlines` cuts them, that holds something other than whitespace.
_NON_BLANK_LINE = re.compile(rb"[^\r\n]*[^\s][^\r\n]*")
_DECODER = json.JSONDecoder()
# The keys `parsing.load_items` takes a batch's items from, in its order of preference.
_WRAPPER_KEYS = ("records", "batch", "data", "logs")


class Shape(Enum):
    ITEMS = "items"  # a JSON array, a wrapper object ({"records": [...]}, …), one object, or NDJSON
    TRANSCRIPT = "transcript"  # JSON lines, or a JSON array of line objects
    OTLP_LOGS = "otlp-logs"  # resourceLogs[].scopeLogs[].logRecords[], one request or one a line
    OTLP_TRACES = "otlp-traces"  # resourceSpans[].scopeSpans[].spans[]
    OTLP_METRICS = "otlp-metrics"  # resourceMetrics[].scopeMetrics[].metrics[].{sum,gauge,…}.dataPoints[]


# A level is an array of objects, or (a tuple of names) an object member of one of those names.
_Level = str | tuple[str, ...]
_METRIC_KINDS = ("sum", "gauge", "histogram", "exponentialHistogram", "summary")
_OTLP_PATHS: dict[Shape, tuple[_Level, ...]] = {
    Shape.OTLP_LOGS: ("resourceLogs", "scopeLogs", "logRecords"),
    Shape.OTLP_TRACES: ("resourceSpans", "scopeSpans", "spans"),
    Shape.OTLP_METRICS: ("resourceMetrics", "scopeMetrics", "metrics", _METRIC_KINDS, "dataPoints"),
}


class _Unreadable(Exception):
    """The body is not the JSON it should be here: stop counting and leave the error to the parser."""


class _TooMany(Exception):
    """The count passed the limit: no need to look further."""


def count_items(body: bytes, *, shape: Shape, ndjson: bool, limit: int) -> int:
    """The number of items of `body`, or `limit + 1` as soon as it is known to be more than `limit`."""
    counter = _Counter(limit)
    try:
        if shape in _OTLP_PATHS:
            for text in _lines(body) if ndjson else [_text(body)]:
                try:
                    _Walker(text, counter).otlp_request(_OTLP_PATHS[shape])
                except _Unreadable:
                    continue  # the parser rejects that line (or the whole body)
        elif ndjson or (shape is Shape.TRANSCRIPT and body.lstrip()[:1] != b"["):
            counter.lines(body)
        else:
            _Walker(_text(body), counter).items_document(body, transcript=shape is Shape.TRANSCRIPT)
    except _TooMany:
        return limit + 1
    except _Unreadable:
        pass
    return counter.count


def _text(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise _Unreadable from None


def _lines(body: bytes) -> Iterator[str]:
    for match in _NON_BLANK_LINE.finditer(body):
        try:
            yield match.group().decode("utf-8")
        except UnicodeDecodeError:
            continue  # the parser rejects that line by its index


class _Counter:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0

    def add(self, items: int = 1) -> None:
        self.count += items
        if self.count > self.limit:
            raise _TooMany

    def lines(self, body: bytes) -> None:
        for _ in _NON_BLANK_LINE.finditer(body):
            self.add()


class _Walker:
    """A cursor over one JSON document that steps through the containers above the items and decodes each
    item (or any value it does not need to look into) whole with the C decoder."""

    def __init__(self, text: str, counter: _Counter) -> None:
        self.text = text
        self.pos = 0
        self.counter = counter

    def items_document(self, body: bytes, *, transcript: bool) -> None:
        self.skip()
        first = self.peek()
        if first == "[":
            self.count_elements()
        elif first == "{" and not transcript:
            self.wrapper()
            self.skip()
            if self.pos != len(self.text):
                # More after the first object: objects one per line, which `load_items` reads as NDJSON.
                self.counter.count = 0
                self.counter.lines(body)
        elif first:
            self.counter.add()  # one object (or any lone value): one item

    def wrapper(self) -> None:
        """A top-level object: the items of its first wrapper key (in `load_items`' order) holding an array, or
        the object itself as one item."""
        counts: dict[str, int] = {}
        for key in self.members():
            if key in _WRAPPER_KEYS and self.peek() == "[":
                before = self.counter.count
                self.count_elements()  # checked against the limit as it goes
                counts[key] = self.counter.count - before
                self.counter.count = before
            else:
                counts.pop(key, None)  # json.loads keeps a repeated key's last value
                self.skip_value()
        self.counter.add(next((counts[key] for key in _WRAPPER_KEYS if key in counts), 1))

    def otlp_request(self, keys: tuple[_Level, ...]) -> None:
        self.skip()
        if self.peek() != "{":
            raise _Unreadable
        self.otlp_level(keys)

    def otlp_level(self, keys: tuple[_Level, ...]) -> None:
        """At an object whose `keys[0]` array holds the next level's objects, or at the last level the items; a
        tuple `keys[0]` names object members that hold the next level (a metric's `sum`, `histogram`, …)."""
        for key in self.members():
            if isinstance(keys[0], tuple):
                if key in keys[0] and self.peek() == "{":
                    self.otlp_level(keys[1:])
                else:
                    self.skip_value()
            elif key != keys[0] or self.peek() != "[":
                self.skip_value()
            elif len(keys) == 1:
                self.count_elements()
            else:
                for _ in self.elements():
                    if self.peek() == "{":
                        self.otlp_level(keys[1:])
                    else:
                        self.skip_value()

    def count_elements(self) -> None:
        for _ in self.elements():
            self.skip_value()
            self.counter.add()

    # -- the cursor ----------------------------------------------------------------------------------------------

    def peek(self) -> str:
        return self.text[self.pos : self.pos + 1]

    def skip(self) -> None:
        match = _WHITESPACE.match(self.text, self.pos)
        if match:
            self.pos = match.end()

    def expect(self, char: str) -> None:
        self.skip()
        if self.peek() != char:
            raise _Unreadable
        self.pos += 1
        self.skip()

    def skip_value(self) -> None:
        """Decode the value at the cursor and drop it (it is one item, or a value the count does not need)."""
        try:
            _value, self.pos = _DECODER.raw_decode(self.text, self.pos)
        except (ValueError, RecursionError):
            raise _Unreadable from None

    def elements(self) -> Iterator[None]:
        """At `[`: stops at each element's start; the loop body must move the cursor past that element."""
        self.expect("[")
        if self.peek() == "]":
            self.pos += 1
            return
        while True:
            yield
            self.skip()
            if self.peek() == "]":
                self.pos += 1
                return
            self.expect(",")

    def members(self) -> Iterator[str]:
        """At `{`: yields each key with the cursor at its value; the loop body must move past that value."""
        self.expect("{")
        if self.peek() == "}":
            self.pos += 1
            return
        while True:
            if self.peek() != '"':
                raise _Unreadable
            try:
                key, self.pos = json.decoder.scanstring(self.text, self.pos + 1)  # type: ignore[attr-defined]
            except ValueError:
                raise _Unreadable from None
            self.expect(":")
            yield key
            self.skip()
            if self.peek() == "}":
                self.pos += 1
                return
            self.expect(",")
