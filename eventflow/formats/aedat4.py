"""iniVation AEDAT 4.0 (DV software): polarity events of one ``EVTS`` stream.

Layout: ``#!AER-DAT4.0\\r\\n``, a u32 length, an ``IOHE`` flatbuffer (compression,
``dataTablePosition``, an XML description of the streams), then packets
``{i32 stream_id, u32 size, payload}`` up to the data table. Each payload is one LZ4
or Zstd frame (or raw bytes) holding a size-prefixed ``EVTS`` flatbuffer: a vector of
16-byte structs ``{i64 t, i16 x, i16 y, bool on}``. Timestamps are Unix microseconds.

The flatbuffers are read with the small bounds-checked helpers below (no
``flatbuffers`` dependency). Memory stays bounded: one packet at a time, and no
packet may exceed ``max_packet_bytes`` compressed or decompressed.

>>> r = Aedat4Reader("recording.aedat4")            # doctest: +SKIP
>>> r.width, r.height, r.stream_id, r.compression   # doctest: +SKIP
(320, 240, 0, 'LZ4')
"""
from __future__ import annotations

import os
import struct
import xml.etree.ElementTree as ET

import lz4.frame
import numpy as np
import zstandard

from ..errors import OUT_OF_BOUNDS, TRUNCATED, EventFormatError
from ..events import empty
from .reader import EventReader

MAGIC = b"#!AER-DAT4.0\r\n"
COMPRESSIONS = ("NONE", "LZ4", "LZ4_HIGH", "ZSTD", "ZSTD_HIGH")
MAX_PACKET_BYTES = 64 << 20  # a sane bound on one packet, compressed or not
MAX_HEADER_BYTES = 16 << 20
_STEP = 1 << 20  # LZ4 output is produced 1 MiB at a time, so the cap is checked as it grows

#: one element of an EventPacket's vector (flatbuffers pads the 13-byte struct to 16)
EVENT4_DTYPE = np.dtype({"names": ["t", "x", "y", "on"], "formats": ["<i8", "<i2", "<i2", "u1"],
                         "offsets": [0, 8, 10, 12], "itemsize": 16})


class FlatBuffer:
    """Bounds-checked reads from one flatbuffer; errors name ``path`` and the byte ``where``.

    >>> buf = bytes.fromhex("10000000") + b"TEST" + bytes.fromhex("060008000400" "0000" "08000000" "07000000")
    >>> fb = FlatBuffer(buf, "example")
    >>> fb.identifier(), fb.scalar(fb.field(fb.root(), 0), "<i")
    ('TEST', 7)
    """

    def __init__(self, buf, path, where: int | None = None, what: str = "flatbuffer"):
        self.buf = memoryview(buf)
        self.path, self.where, self.what = path, where, what

    def fail(self, message):
        raise EventFormatError(f"{self.what}: {message}", self.path, self.where)

    def scalar(self, pos: int, fmt: str):
        size = struct.calcsize(fmt)
        if pos < 0 or pos + size > len(self.buf):
            self.fail(f"offset {pos} (+{size}) is outside its {len(self.buf)} bytes")
        return struct.unpack_from(fmt, self.buf, pos)[0]

    def root(self) -> int:
        return self.scalar(0, "<I")

    def identifier(self) -> str:
        return bytes(self.buf[4:8]).decode("latin-1") if len(self.buf) >= 8 else ""

    def field(self, table: int, index: int):
        """Absolute position of field ``index`` of the table at ``table``, None when absent."""
        vtable = table - self.scalar(table, "<i")
        vt_size = self.scalar(vtable, "<H")
        slot = 4 + 2 * index
        if slot + 2 > vt_size:
            return None
        off = self.scalar(vtable + slot, "<H")
        return table + off if off else None

    def vector(self, pos: int, elem_size: int):
        """(start, length) of the vector (or string) referenced at ``pos``, checked to fit."""
        vec = pos + self.scalar(pos, "<I")
        n = self.scalar(vec, "<I")
        if vec + 4 + n * elem_size > len(self.buf):
            self.fail(f"a vector of {n} x {elem_size} bytes at offset {vec} overruns its {len(self.buf)} bytes")
        return vec + 4, n


def parse_io_header(buf, path=None, where=None) -> dict:
    """The IOHeader table: ``compression`` (name), ``data_table_position``, ``info_xml``."""
    fb = FlatBuffer(buf, path, where, "IOHeader")
    if fb.identifier() != "IOHE":
        fb.fail(f"file identifier is {fb.identifier()!r}, expected 'IOHE'")
    root = fb.root()
    pos = fb.field(root, 0)
    code = 0 if pos is None else fb.scalar(pos, "<i")
    if not 0 <= code < len(COMPRESSIONS):
        fb.fail(f"unknown compression code {code}")
    pos = fb.field(root, 1)
    table_pos = -1 if pos is None else fb.scalar(pos, "<q")
    pos = fb.field(root, 2)
    info = ""
    if pos is not None:
        start, n = fb.vector(pos, 1)
        info = bytes(fb.buf[start:start + n]).decode("utf-8", "replace")
    return {"compression": COMPRESSIONS[code], "data_table_position": table_pos, "info_xml": info}


def parse_streams(info_xml: str, path=None, where=None) -> list:
    """Streams listed by the header's XML: dicts with id, type, name, size_x, size_y."""
    if "<!DOCTYPE" in info_xml or "<!ENTITY" in info_xml:
        raise EventFormatError("IOHeader XML declares a DOCTYPE/ENTITY (refused)", path, where)
    try:
        root = ET.fromstring(info_xml.rstrip("\x00").strip() or "<dv/>")
    except ET.ParseError as e:
        raise EventFormatError(f"IOHeader XML is not well formed ({e})", path, where) from None
    streams = []
    for node in root.iter("node"):
        name = node.get("name", "")
        attrs = {a.get("key"): (a.text or "") for a in node.findall("attr")}
        if not name.isdigit() or "typeIdentifier" not in attrs:
            continue
        info = next((n for n in node.findall("node") if n.get("name") == "info"), None)
        iattrs = {} if info is None else {a.get("key"): (a.text or "") for a in info.findall("attr")}

        def as_int(v):
            return int(v) if v and v.strip().lstrip("-").isdigit() else None

        streams.append({"id": int(name), "type": attrs["typeIdentifier"].strip(),
                        "name": attrs.get("originalOutputName", ""),
                        "size_x": as_int(iattrs.get("sizeX")), "size_y": as_int(iattrs.get("sizeY"))})
    return streams


def decompress(data, compression: str, cap: int, path=None, where=None) -> bytes:
    """One packet's payload, decompressed to at most ``cap`` bytes (else EventFormatError)."""
    if compression == "NONE":
        return bytes(data)
    try:
        if compression.startswith("LZ4"):
            d = lz4.frame.LZ4FrameDecompressor()
            parts = [d.decompress(data, max_length=_STEP)]
            total = len(parts[0])
            while not d.eof and total <= cap and not d.needs_input:
                parts.append(d.decompress(b"", max_length=_STEP))
                total += len(parts[-1])
                if not parts[-1]:
                    break  # no progress: a corrupt frame, reported below
            if total > cap:
                raise EventFormatError(f"packet decompresses beyond the {cap}-byte limit", path, where)
            if not d.eof:
                raise EventFormatError("LZ4 frame ends early (truncated or corrupt packet)", path, where)
            return b"".join(parts)
        size = zstandard.get_frame_parameters(bytes(data[:18])).content_size
        if size != zstandard.CONTENTSIZE_UNKNOWN and size > cap:
            raise EventFormatError(f"packet declares {size} decompressed bytes, beyond the {cap}-byte limit",
                                   path, where)
        return zstandard.ZstdDecompressor(max_window_size=1 << 27).decompress(data, max_output_size=cap)
    except EventFormatError:
        raise
    except Exception as e:  # lz4 raises RuntimeError, zstandard ZstdError
        raise EventFormatError(f"cannot decompress {compression} packet ({e})", path, where) from None


def decode_event_packet(payload, path=None, where=None) -> np.ndarray:
    """The events of one decompressed payload (a size-prefixed ``EVTS`` flatbuffer), as
    EVENT4_DTYPE (a copy)."""
    if len(payload) < 4:
        raise EventFormatError("EventPacket is shorter than its size prefix", path, where)
    size = struct.unpack_from("<I", payload, 0)[0]
    if size > len(payload) - 4:
        raise EventFormatError(f"EventPacket size prefix {size} exceeds the {len(payload) - 4} bytes that follow",
                               path, where)
    fb = FlatBuffer(memoryview(payload)[4:4 + size], path, where, "EventPacket")
    if fb.identifier() != "EVTS":
        fb.fail(f"file identifier is {fb.identifier()!r}, expected 'EVTS'")
    pos = fb.field(fb.root(), 0)
    if pos is None:
        return np.zeros(0, EVENT4_DTYPE)
    start, n = fb.vector(pos, EVENT4_DTYPE.itemsize)
    return np.frombuffer(fb.buf, EVENT4_DTYPE, count=n, offset=start).copy()


class Aedat4Reader(EventReader):
    """Polarity events of an AEDAT 4.0 file (one EVTS stream; other streams are skipped).

    Options beyond ``EventReader``'s: ``stream_id`` (which EVTS stream; default the
    lowest id), ``max_packet_bytes`` (bound on one packet, compressed or decompressed).
    ``p`` is 1 for ON (brightness increase), 0 for OFF.
    """

    format = "aedat4"
    _checks_bounds = True

    def __init__(self, path, *, stream_id=None, max_packet_bytes=MAX_PACKET_BYTES, **options):
        super().__init__(path, **options)
        self.max_packet_bytes = int(max_packet_bytes)
        self.file_size = os.path.getsize(self.path)
        with open(self.path, "rb") as f:
            head = f.read(len(MAGIC) + 4)
            if not head.startswith(MAGIC):
                raise EventFormatError("not an AEDAT 4.0 file (magic '#!AER-DAT4.0\\r\\n' missing)", self.path, 0)
            if len(head) < len(MAGIC) + 4:
                raise EventFormatError("file ends inside the header length", self.path, len(MAGIC))
            n = struct.unpack_from("<I", head, len(MAGIC))[0]
            if n > min(MAX_HEADER_BYTES, self.file_size - len(head)):
                raise EventFormatError(f"header length {n} exceeds the file or the {MAX_HEADER_BYTES}-byte limit",
                                       self.path, len(MAGIC))
            header = parse_io_header(f.read(n), self.path, len(head))
        self.data_start = len(head) + n
        self.compression = header["compression"]
        self.data_table_position = header["data_table_position"]
        self.streams = parse_streams(header["info_xml"], self.path, len(head))
        events = [s for s in self.streams if s["type"] == "EVTS"]
        if stream_id is not None:
            events = [s for s in events if s["id"] == int(stream_id)]
        if not events:
            kinds = ", ".join(f"{s['id']}:{s['type']}" for s in self.streams) or "none"
            raise EventFormatError(f"no EVTS stream{'' if stream_id is None else f' with id {stream_id}'} "
                                   f"(streams: {kinds})", self.path, len(head))
        stream = min(events, key=lambda s: s["id"])
        self.stream_id = stream["id"]
        self._set_geometry(stream["size_x"], stream["size_y"], "AEDAT 4 header")

    def _data_end(self) -> int:
        table = self.data_table_position
        return self.file_size if table < self.data_start or table > self.file_size else table

    def _packets(self):
        """(byte offset, raw payload) of the selected stream's packets, in file order; the
        other streams' packets are skipped unread."""
        end = self._data_end()
        with open(self.path, "rb") as f:
            pos = self.data_start
            f.seek(pos)
            while pos < end:
                head = f.read(min(8, end - pos))
                if len(head) < 8:
                    self.violations.add(TRUNCATED, end - pos, pos)
                    return
                sid, size = struct.unpack("<iI", head)
                if size > end - pos - 8:
                    raise EventFormatError(f"packet size {size} exceeds the {end - pos - 8} bytes left in the file",
                                           self.path, pos)
                if size > self.max_packet_bytes:
                    raise EventFormatError(f"packet size {size} exceeds the {self.max_packet_bytes}-byte limit",
                                           self.path, pos)
                if sid == self.stream_id:
                    yield pos, f.read(size)
                else:
                    f.seek(size, os.SEEK_CUR)
                pos += 8 + size

    def _decode(self):
        w, h = self.width, self.height
        for pos, raw in self._packets():
            payload = decompress(raw, self.compression, self.max_packet_bytes, self.path, pos)
            ev4 = decode_event_packet(payload, self.path, pos)
            x = ev4["x"].astype(np.int32)
            y = ev4["y"].astype(np.int32)
            ok = (x >= 0) & (y >= 0)
            if w is not None:
                ok &= x < w
            if h is not None:
                ok &= y < h
            if not ok.all():
                self.violations.add(OUT_OF_BOUNDS, int((~ok).sum()), pos)
                ev4, x, y = ev4[ok], x[ok], y[ok]
            out = empty(len(ev4))
            out["x"] = x
            out["y"] = y
            out["p"] = ev4["on"] != 0
            out["t"] = ev4["t"]
            yield out
        if TRUNCATED in self.violations.first_offset:
            yield empty(0)  # lets strict mode see a truncation found after the last packet
