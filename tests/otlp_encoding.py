"""Test helper: an OTLP/JSON document encoded as the protobuf request an OTLP/HTTP exporter sends.

OTLP/JSON writes trace and span ids as hex where the protobuf JSON mapping expects base64, so they are turned into
base64 before the official message classes parse the document; everything else maps as it is.
"""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

from google.protobuf.json_format import ParseDict

from app.sources.otlp_proto import SIGNALS

_ITEMS = {"logs": ("resourceLogs", "scopeLogs", "logRecords"), "traces": ("resourceSpans", "scopeSpans", "spans")}


def _base64(hex_id: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_id)).decode()


def to_protobuf(document: dict[str, Any] | bytes, signal: str) -> bytes:
    data = json.loads(document) if isinstance(document, bytes) else copy.deepcopy(document)
    if signal in _ITEMS:
        resources, scopes, items = _ITEMS[signal]
        for block in data.get(resources) or ():
            for scope in block.get(scopes) or ():
                for item in scope.get(items) or ():
                    for key in ("traceId", "spanId", "parentSpanId"):
                        if item.get(key):
                            item[key] = _base64(item[key])
                    for link in item.get("links") or ():
                        for key in ("traceId", "spanId"):
                            if link.get(key):
                                link[key] = _base64(link[key])
    message = SIGNALS[signal].request()
    ParseDict(data, message)
    return bytes(message.SerializeToString())
