"""Prophesee RAW (and DAT) text headers: ``% key value`` lines before the binary data.

An optional ``% end`` line closes the header; otherwise the data start at the
first line that does not begin with ``% ``. Geometry comes from the header
(``% format EVT3;height=720;width=1280``, ``% geometry 1280x720``, DAT's
``% Width`` / ``% Height``), else from the plugin name (gen3 = 640x480,
gen41 = 1280x720), else from the caller.

>>> h = parse_header(b"% evt 3.0\\n% geometry 1280x720\\n% end\\n", "x.raw")
>>> h.evt, h.width, h.height, h.data_offset
('evt3', 1280, 720, 36)
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from ..errors import EventFormatError

MAX_HEADER_BYTES = 1 << 20

# plugin / sensor name fragments -> (width, height); the most specific first
_PLUGIN_GEOMETRY = [
    ("imx636", (1280, 720)), ("gen41", (1280, 720)), ("gen4.1", (1280, 720)), ("imx646", (1280, 720)),
    ("imx8", (1280, 720)), ("gen31", (640, 480)), ("gen3.1", (640, 480)), ("gen3", (640, 480)),
    ("gen4", (1280, 720)), ("imx731", (1280, 720)),
]


@dataclass(frozen=True)
class RawHeader:
    fields: dict = field(default_factory=dict)
    data_offset: int = 0
    evt: str | None = None          # "evt2", "evt3", or None when the header does not say
    width: int | None = None
    height: int | None = None
    geometry_source: str | None = None
    file_size: int | None = None


class _BadField(ValueError):
    """A header line whose value is not what its key needs (``key`` names the line)."""

    def __init__(self, key, message):
        super().__init__(message)
        self.key = key


def _size(key, text) -> int:
    text = text.strip()
    if not text.isdigit() or not 0 < int(text) <= 65536:
        raise _BadField(key, f"header line '{key}': expected a width or height of 1..65536, got {text!r}")
    return int(text)


def _geometry(fields: dict):
    fmt = fields.get("format", "")
    kv = dict(p.split("=", 1) for p in fmt.split(";")[1:] if "=" in p)
    if "width" in kv and "height" in kv:
        return _size("format", kv["width"]), _size("format", kv["height"]), "header format line"
    geo = fields.get("geometry")
    if geo:
        m = re.fullmatch(r"\s*(\d+)\s*x\s*(\d+)\s*", geo)
        if m:
            return _size("geometry", m.group(1)), _size("geometry", m.group(2)), "header geometry line"
    w, h = fields.get("Width") or fields.get("width"), fields.get("Height") or fields.get("height")
    if w and h:
        return (_size("Width" if "Width" in fields else "width", w), _size("Height" if "Height" in fields else "height", h),
                "header Width/Height lines")
    plugin = (fields.get("plugin_name", "") + " " + fields.get("sensor_generation", "")).lower()
    for frag, (pw, ph) in _PLUGIN_GEOMETRY:
        if frag in plugin:
            return pw, ph, f"plugin name {fields.get('plugin_name', '').strip()!r}"
    return None, None, None


def _evt_version(fields: dict):
    fmt = fields.get("format", "").split(";")[0].strip().upper()
    if fmt in ("EVT3", "EVT3.0"):
        return "evt3"
    if fmt in ("EVT2", "EVT2.0"):
        return "evt2"
    evt = fields.get("evt", "").strip()
    return {"3.0": "evt3", "3": "evt3", "2.0": "evt2", "2": "evt2", "2.1": "evt21"}.get(evt)


def parse_header(head: bytes, path, full_size: int | None = None) -> RawHeader:
    """Parse the ``%`` header at the start of ``head`` (the file's first bytes)."""
    fields: dict = {}
    line_at: dict = {}   # byte offset of each key's line
    pos = 0
    n = len(head)
    while pos < n and (head.startswith(b"% ", pos) or head.startswith(b"%\n", pos)):
        end = head.find(b"\n", pos)
        if end < 0:
            if full_size is not None and n < full_size:
                raise EventFormatError(f"header line longer than {n} bytes", path, pos)
            raise EventFormatError("header line without a newline (truncated file?)", path, pos)
        line = head[pos + 2:end].rstrip(b"\r").decode("latin-1")
        start, pos = pos, end + 1
        if line.strip().lower() == "end":
            break
        key, _, value = line.partition(" ")
        if key and key not in fields:
            fields[key], line_at[key] = value.strip(), start
    try:
        w, h, src = _geometry(fields)
    except _BadField as e:
        raise EventFormatError(str(e), path, line_at.get(e.key)) from None
    return RawHeader(fields=fields, data_offset=pos, evt=_evt_version(fields), width=w, height=h,
                     geometry_source=src)


def read_header(f, path) -> RawHeader:
    """Read and parse the header of an open binary file; leaves ``f`` at the data."""
    f.seek(0, 2)
    size = f.tell()
    f.seek(0)
    head = f.read(min(size, MAX_HEADER_BYTES))
    hdr = parse_header(head, path, full_size=size)
    if hdr.data_offset >= MAX_HEADER_BYTES and size > MAX_HEADER_BYTES:
        raise EventFormatError(f"header longer than {MAX_HEADER_BYTES} bytes", path, hdr.data_offset)
    f.seek(hdr.data_offset)
    return replace(hdr, file_size=size)
