"""iniVation AEDAT 3.1 (cAER / DV, e.g. DVS128 Gesture) and AEDAT 2.0 (jAER) files.

AEDAT 3.1: ``#`` header lines (CRLF) up to ``#!END-HEADER``, then packets: a 28-byte
little-endian header ``{i16 type, i16 source, i32 eventSize, i32 tsOffset,
i32 tsOverflow, i32 capacity, i32 number, i32 valid}`` and ``capacity * eventSize``
bytes. Polarity events (type 1) are ``{u32 data, u32 ts}``: valid = bit 0, p = bit 1,
y = bits 2-16, x = bits 17-31, ``t = tsOverflow << 31 | ts``; origin top left.

AEDAT 2.0: ``#`` header lines, then big-endian ``{u32 address, u32 timestamp}``.
The address layout belongs to the jAER chip class named by the ``# AEChip:`` line;
jAER's extractors put the origin bottom left, and events here come out top left like
every other format of eventflow:
  DVS128:  x = 127 - bits 1-7, y = 127 - bits 8-14, ON when bit 0 is 0 (jAER's
           Tmpdiff128/DVS128 extractor: flipx and fliptype); bit 15 = external event.
  DAVIS:   x = W-1 - bits 12-21, y = H-1 - bits 22-30, ON when bit 11 is 1 (jAER's
           DavisBaseCamera extractor, y turned to the top; the same as tonic's
           ``read_davis_346``); bit 31 = APS/IMU sample, bit 10 = external input.
Samples that are not polarity events are skipped and counted in ``reader.skipped``.
32-bit timestamps that wrap are unwrapped (``reader.time_wraps``).

>>> r = Aedat3Reader("user01_fluorescent.aedat")   # doctest: +SKIP
>>> r.width, r.height, r.labels[:1]                 # doctest: +SKIP
(128, 128, array([(1, 80048239, 85092709)], dtype=...))
"""
from __future__ import annotations

import os
import re
import struct
from collections import Counter

import numpy as np

from ..errors import INVALID_EVENT, NON_MONOTONIC_TIME, OUT_OF_BOUNDS, TRUNCATED, EventFormatError
from ..events import empty
from .reader import EventReader

MAX_HEADER_BYTES = 16 << 20
MAX_PACKET_BYTES = 64 << 20
POLARITY_EVENT = 1
GESTURE_LABEL_DTYPE = np.dtype([("class", "<i4"), ("t_start", "<i8"), ("t_end", "<i8")])

#: AEDAT 3.1 source description (prefix, upper case) -> sensor size
SOURCE_GEOMETRY = {"DVS128": (128, 128), "EDVS": (128, 128), "DAVIS128": (128, 128),
                   "DAVIS208": (208, 192), "DAVIS240": (240, 180), "DAVIS346": (346, 260),
                   "DAVIS640": (640, 480)}
#: AEDAT 2.0 jAER chip class (last name, lower case, prefix) -> (layout, width, height)
AECHIP_LAYOUT = {"dvs128": ("dvs128", 128, 128), "tmpdiff128": ("dvs128", 128, 128),
                 "davis128": ("davis", 128, 128), "davis208": ("davis", 208, 192),
                 "davis240": ("davis", 240, 180), "sbret10": ("davis", 240, 180),
                 "davis346": ("davis", 346, 260), "davis640": ("davis", 640, 480)}


def read_header_lines(f, path, *, until: bytes | None = None):
    """Read ``#`` lines from the start of ``f``; returns (lines as str, data offset).

    Stops before the first byte that is not ``#`` at a line start, or after the line
    ``until`` (AEDAT 3.1's ``#!END-HEADER``), which is then required.
    """
    lines, pos = [], 0
    while True:
        first = f.read(1)
        if first != b"#":
            if until is not None:
                raise EventFormatError(f"header ends without a {until.decode()} line", path, pos)
            return lines, pos
        line = first + f.readline(MAX_HEADER_BYTES)
        if not line.endswith(b"\n") and until is not None:
            raise EventFormatError("file ends inside the header", path, pos)
        pos += len(line)
        if pos > MAX_HEADER_BYTES:
            raise EventFormatError(f"header longer than {MAX_HEADER_BYTES} bytes", path, pos)
        text = line.rstrip(b"\r\n").decode("latin-1")
        lines.append(text)
        if until is not None and line.rstrip(b"\r\n") == until:
            return lines, pos


def read_gesture_labels(path) -> np.ndarray:
    """DVS128 Gesture's ``<trial>_labels.csv`` (``class,startTime_usec,endTime_usec``).

    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "user01_led_labels.csv")
    >>> _ = open(p, "w").write("class,startTime_usec,endTime_usec\\n1,80048239,85092709\\n")
    >>> read_gesture_labels(p).tolist()
    [(1, 80048239, 85092709)]
    """
    rows, offset = [], 0
    with open(path, "rb") as f:
        for number, line in enumerate(f, 1):
            text = (line[3:] if number == 1 and line.startswith(b"\xef\xbb\xbf") else line).decode("latin-1").strip()
            if number == 1 and text[:1].isalpha():
                if [c.strip().lower() for c in text.split(",")] != ["class", "starttime_usec", "endtime_usec"]:
                    raise EventFormatError(f"line 1: header {text[:60]!r} is not 'class,startTime_usec,endTime_usec'",
                                           path, 0)
            elif text:
                cells = [c.strip() for c in text.split(",")]
                if len(cells) != 3 or not all(c.lstrip("-").isdigit() for c in cells):
                    raise EventFormatError(f"line {number} is not 'class,startTime_usec,endTime_usec':"
                                           f" {text[:60]!r}", path, offset)
                c, start, end = (int(v) for v in cells)
                if not 1 <= c <= 11 or end < start:
                    raise EventFormatError(f"line {number}: class {c} is not one of 1..11 or end {end} is before "
                                           f"start {start}", path, offset)
                rows.append((c, start, end))
            offset += len(line)
    return np.array(rows, dtype=GESTURE_LABEL_DTYPE)


def labels_path(aedat_path) -> str:
    """Where DVS128 Gesture keeps a trial's labels: ``<trial>_labels.csv`` beside it."""
    return os.path.splitext(os.fspath(aedat_path))[0] + "_labels.csv"


class _AedatBase(EventReader):
    _checks_bounds = True

    def _in_bounds(self, x, y, offsets):
        """Mask of events inside the geometry (x, y signed ints); drops are counted."""
        ok = (x >= 0) & (y >= 0)
        if self.width is not None:
            ok &= x < self.width
        if self.height is not None:
            ok &= y < self.height
        if not ok.all():
            self.violations.add(OUT_OF_BOUNDS, int((~ok).sum()), int(offsets[np.argmin(ok)]))
        return ok


class Aedat3Reader(_AedatBase):
    """Polarity events of an AEDAT 3.1 file; other packet types are skipped.

    Options beyond ``EventReader``'s: ``source`` (only packets of this source id),
    ``max_packet_bytes``. ``labels`` holds ``<trial>_labels.csv`` when it exists.
    """

    format = "aedat3"

    def __init__(self, path, *, source=None, max_packet_bytes=MAX_PACKET_BYTES, **options):
        super().__init__(path, **options)
        self.source = None if source is None else int(source)
        self.max_packet_bytes = int(max_packet_bytes)
        self.file_size = os.path.getsize(self.path)
        with open(self.path, "rb") as f:
            if not f.read(12).startswith(b"#!AER-DAT3."):
                raise EventFormatError("not an AEDAT 3 file (no '#!AER-DAT3.' line)", self.path, 0)
            f.seek(0)
            first = f.readline(64).rstrip(b"\r\n")
            if first != b"#!AER-DAT3.1":
                raise EventFormatError(f"{first.decode('latin-1')!r}: only AEDAT 3.1 is supported", self.path, 0)
            f.seek(0)
            self.header, self.data_start = read_header_lines(f, self.path, until=b"#!END-HEADER")
        self.sources = {}
        for line in self.header:
            m = re.match(r"#Format:\s*(\S+)", line)
            if m and m.group(1) != "RAW":
                raise EventFormatError(f"format {m.group(1)!r} is not supported (only RAW)", self.path, 0)
            m = re.match(r"#Source (\d+):\s*(.*)", line)
            if m:
                self.sources[int(m.group(1))] = m.group(2).strip()
        if self.source is None:  # geometry of the first listed source
            described = next(iter(self.sources.values()), "")
        else:
            described = self.sources.get(self.source, "")
        size = next((s for k, s in SOURCE_GEOMETRY.items() if described.upper().startswith(k)), (None, None))
        self._set_geometry(*size, f"AEDAT 3.1 source line ({described})")
        lp = labels_path(self.path)
        self.labels = read_gesture_labels(lp) if os.path.isfile(lp) else None
        self.skipped = Counter()

    def _decode(self):
        self.skipped = Counter()
        end, pos = self.file_size, self.data_start
        with open(self.path, "rb") as f:
            f.seek(pos)
            while pos < end:
                head = f.read(28)
                if len(head) < 28:
                    self.violations.add(TRUNCATED, len(head), pos)
                    yield empty(0)  # lets strict mode see the violation
                    return
                etype, src, esize, ts_off, overflow, cap, number, valid = struct.unpack("<hhiiiiii", head)
                if esize <= 0 or cap < 0 or overflow < 0 or not 0 <= number <= cap or not 0 <= valid <= number:
                    raise EventFormatError(f"bad packet header (type {etype}, eventSize {esize}, capacity {cap},"
                                           f" number {number}, valid {valid}, tsOverflow {overflow})",
                                           self.path, pos)
                body = cap * esize
                if body > end - pos - 28:
                    raise EventFormatError(f"packet of {body} bytes exceeds the {end - pos - 28} bytes left"
                                           " in the file", self.path, pos)
                if body > self.max_packet_bytes:
                    raise EventFormatError(f"packet of {body} bytes exceeds the {self.max_packet_bytes}-byte limit",
                                           self.path, pos)
                if etype != POLARITY_EVENT or (self.source is not None and src != self.source):
                    self.skipped[f"type{etype}" if etype != POLARITY_EVENT else f"source{src}"] += 1
                elif esize != 8 or ts_off != 4:
                    raise EventFormatError(f"polarity packet with eventSize {esize}, tsOffset {ts_off}"
                                           " (expected 8, 4)", self.path, pos)
                else:
                    for i in range(0, number, self.chunk_events):
                        k = min(self.chunk_events, number - i)
                        raw = np.frombuffer(f.read(8 * k), "<u4").reshape(k, 2)
                        yield self._polarity(raw, overflow, pos + 28 + 8 * i)
                pos += 28 + body
                f.seek(pos)

    def _polarity(self, raw, overflow, offset):
        data, ts = raw[:, 0], raw[:, 1]
        offsets = offset + 8 * np.arange(len(raw))
        valid = (data & 1).astype(bool)
        if not valid.all():
            self.violations.add(INVALID_EVENT, int((~valid).sum()), int(offsets[np.argmin(valid)]))
            data, ts, offsets = data[valid], ts[valid], offsets[valid]
        x = ((data >> 17) & 0x7FFF).astype(np.int32)
        y = ((data >> 2) & 0x7FFF).astype(np.int32)
        ok = self._in_bounds(x, y, offsets)
        out = empty(int(ok.sum()))
        out["x"], out["y"] = x[ok], y[ok]
        out["p"] = (data[ok] >> 1) & 1
        out["t"] = (np.int64(overflow) << 31) | (ts[ok] & 0x7FFFFFFF).astype(np.int64)
        return out


class Aedat2Reader(_AedatBase):
    """Polarity events of a jAER AEDAT 2.0 file (DVS128 or DAVIS address layout).

    Options beyond ``EventReader``'s: ``sensor`` ("dvs128" or "davis") where the
    ``# AEChip:`` line is missing or names a chip not in ``AECHIP_LAYOUT``; a DAVIS
    layout then needs ``width`` and ``height``.
    """

    format = "aedat2"

    def __init__(self, path, *, sensor=None, **options):
        super().__init__(path, **options)
        self.file_size = os.path.getsize(self.path)
        with open(self.path, "rb") as f:
            self.header, self.data_start = read_header_lines(f, self.path)
        if not self.header or not self.header[0].startswith("#!AER-DAT2."):
            raise EventFormatError("not an AEDAT 2.0 file (no '#!AER-DAT2.' first line)", self.path, 0)
        chip = next((line.split(":", 1)[1].strip() for line in self.header if line.startswith("# AEChip:")), None)
        self.chip = chip
        name = (chip or "").rsplit(".", 1)[-1].lower()
        known = next((v for k, v in AECHIP_LAYOUT.items() if name.startswith(k)), None)
        if sensor is not None:
            if sensor not in ("dvs128", "davis"):
                raise ValueError(f"sensor must be 'dvs128' or 'davis', got {sensor!r}")
            self.layout = sensor
            if known is not None and known[0] == sensor:
                self._set_geometry(known[1], known[2], f"AEChip {chip}")
        elif known is not None:
            self.layout = known[0]
            self._set_geometry(known[1], known[2], f"AEChip {chip}")
        else:
            raise EventFormatError(f"unknown AEChip {chip!r}: pass sensor='dvs128' or 'davis'"
                                   " (with width, height)", self.path, 0)
        if self.layout == "dvs128":
            self._set_geometry(128, 128, "DVS128 address layout")
        elif self.width is None or self.height is None:
            raise EventFormatError("a DAVIS layout needs width and height (the AEChip line gives none)",
                                   self.path, 0)
        self.skipped = Counter()
        self.time_wraps = 0

    def _decode(self):
        self.skipped = Counter()
        self.time_wraps = 0
        last_t32 = last_t = None
        step = 8 * self.chunk_events
        pos = self.data_start
        with open(self.path, "rb") as f:
            f.seek(pos)
            while True:
                buf = f.read(step)
                n = len(buf) // 8
                if n:
                    rec = np.frombuffer(buf, ">u4", count=2 * n).reshape(n, 2)
                    ts = rec[:, 1].astype(np.int64)
                    d = np.diff(ts, prepend=ts[0] if last_t32 is None else last_t32)
                    wraps = self.time_wraps + np.cumsum(d < -(1 << 31))
                    self.time_wraps, last_t32 = int(wraps[-1]), int(ts[-1])
                    ev, offsets = self._addresses(rec[:, 0], ts + (wraps << 32), pos)
                    if len(ev):
                        t = ev["t"]
                        back = np.diff(t, prepend=t[0] if last_t is None else last_t) < 0
                        if back.any():
                            self.violations.add(NON_MONOTONIC_TIME, int(back.sum()), int(offsets[np.argmax(back)]))
                        last_t = int(t[-1])
                        yield ev
                if len(buf) < step:
                    if len(buf) % 8:
                        self.violations.add(TRUNCATED, len(buf) % 8, pos + 8 * n)
                        yield empty(0)  # lets strict mode see the violation
                    return
                pos += len(buf)

    def _addresses(self, a, t, offset):
        offsets = offset + 8 * np.arange(len(a))
        if self.layout == "dvs128":
            special = (a & 0x8000) != 0
            self.skipped["external_event"] += int(special.sum())
            keep = ~special
            a, t, offsets = a[keep], t[keep], offsets[keep]
            x = 127 - ((a >> 1) & 0x7F).astype(np.int32)
            y = 127 - ((a >> 8) & 0x7F).astype(np.int32)
            p = 1 - (a & 1)
        else:
            aps = (a >> 31) != 0
            special = ~aps & ((a & 0x400) != 0)
            self.skipped["aps_imu_sample"] += int(aps.sum())
            self.skipped["external_event"] += int(special.sum())
            keep = ~(aps | special)
            a, t, offsets = a[keep], t[keep], offsets[keep]
            x = (self.width - 1) - ((a >> 12) & 0x3FF).astype(np.int32)
            y = (self.height - 1) - ((a >> 22) & 0x1FF).astype(np.int32)
            p = (a >> 11) & 1
        ok = self._in_bounds(x, y, offsets)
        out = empty(int(ok.sum()))
        out["x"], out["y"], out["p"], out["t"] = x[ok], y[ok], p[ok], t[ok]
        return out, offsets[ok]
