"""Metavision HDF5 event files: ``/CD/events``, ECF-compressed or not, read and written.

Reading decodes ECF chunks itself (``read_direct_chunk``), so no HDF5 plugin is
needed; uncompressed, gzip and lzf datasets are read through h5py. Either way the
file is streamed one chunk (or block) at a time. ``seek(t)`` uses ``/CD/indexes``
where present, else a binary search over chunk first timestamps; both assume,
as Metavision does, that times do not decrease from chunk to chunk.

Writing produces what Metavision's SDK writes: ``/CD/events`` (chunks of 16384
EventCD records, ECF by default, a short last chunk), ``/CD/indexes`` (one row per
2000 us), empty ``/EXT_TRIGGER/{events,indexes}`` and string root attributes.

>>> with Hdf5Writer("out.hdf5", width=1280, height=720) as w:   # doctest: +SKIP
...     w.write(events)
>>> Hdf5Reader("out.hdf5").read_all()                          # doctest: +SKIP
"""
from __future__ import annotations

import re

import h5py
import numpy as np
from h5py import h5d, h5p, h5s, h5t, h5z

from ..errors import ECF_SURPLUS_EVENTS, EventFormatError
from ..events import EVENT_DTYPE, as_events, empty
from ..kernels import ecf
from .reader import EventReader
from .writer import EventWriter

CHUNK_EVENTS = 16384  # Metavision's chunk length, for every dataset
INDEX_PERIOD_US = 2000
INDEX_DTYPE = np.dtype([("id", "<u8"), ("ts", "<i8")])
TRIGGER_DTYPE = np.dtype({"names": ["p", "t", "id"], "formats": ["<i2", "<i8", "<i2"],
                          "offsets": [0, 8, 16], "itemsize": 24})
ASCII = h5py.string_dtype("ascii")  # variable-length ASCII, as Metavision writes attributes
ECF_TRAILING_BYTES = "ecf_trailing_bytes"  # violation: bytes after a chunk's last stream
COMPRESSIONS = ("ecf", None, "gzip", "lzf")
_PLAIN_BLOCK = 1 << 18  # events per read of a dataset that is not ECF


def _records(ev):
    """Contiguous events as int64 pairs: copies between them run at memory speed."""
    return ev.view(np.int64).reshape(len(ev), 2)


def _text(attrs, key) -> str:
    value = attrs.get(key)
    return "" if value is None else value.decode() if isinstance(value, bytes) else str(value)


def _geometry(attrs):
    """(width, height) from root attributes ``geometry`` ("1280x720"), ``width``/``height``
    or ``format`` ("EVT3;height=720;width=1280"); None where absent."""
    m = re.fullmatch(r"\s*(\d+)\s*x\s*(\d+)\s*", _text(attrs, "geometry"))
    if m:
        return int(m[1]), int(m[2])
    found = []
    for key in ("width", "height"):
        m = re.fullmatch(r"\s*(\d+)\s*", _text(attrs, key)) or re.search(rf"{key}=(\d+)", _text(attrs, "format"))
        found.append(int(m[1]) if m else None)
    return tuple(found)


class Hdf5Reader(EventReader):
    """Streaming reader of ``/CD/events`` (ECF, gzip, lzf or uncompressed).

    Chunk by chunk: an ECF chunk keeps ``min(n, extent - chunk start)`` events; one
    holding fewer than the extent needs is an error. A chunk stored raw (filter
    mask bit 0) is read as raw records. Bytes left after a chunk's last stream are
    counted as the violation ``ecf_trailing_bytes``; events past the extent in the last chunk
    that are not fill records (x = y = p = 0) as ``ecf_surplus_events``. The extent must be
    backed by stored data (chunks, or bytes of a contiguous dataset), and a chunk never written
    is an error, never zeros.
    """

    format = "hdf5"

    def __init__(self, path, **options):
        super().__init__(path, **options)
        with self._open() as f:
            dset = self._events(f)
            self.event_count = int(dset.shape[0])
            self.chunk_length = int(dset.chunks[0]) if dset.chunks else None
            self._check_stored(dset)
            self.metadata = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
            geometry = _geometry(f.attrs)
        self._set_geometry(*geometry, "file's root attributes")
        self._where = (0, None)  # (first event index, file byte offset) of the array last yielded

    def _open(self):
        try:
            return h5py.File(self.path, "r")
        except OSError as e:
            raise EventFormatError(f"not a readable HDF5 file ({e})", self.path, 0) from None

    def _events(self, f):
        """The /CD/events dataset, checked; sets ``self.ecf``."""
        dset = f.get("CD/events")
        if not isinstance(dset, h5py.Dataset):
            raise EventFormatError("no /CD/events dataset (not a Metavision event file)", self.path)
        names = dset.dtype.names or ()
        if dset.ndim != 1 or not {"x", "y", "t"} <= set(names) or not {"p", "polarity", "on"} & set(names):
            raise EventFormatError(f"/CD/events must be 1-D with fields x, y, p, t; it is {dset.shape} "
                                   f"of {dset.dtype}", self.path)
        plist = dset.id.get_create_plist()
        filters = [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]
        self.ecf = ecf.FILTER_ID in filters
        if self.ecf and (filters != [ecf.FILTER_ID] or dset.dtype != EVENT_DTYPE):
            raise EventFormatError(f"ECF needs the 16-byte EventCD type as the only filter; /CD/events has "
                                   f"filters {filters} and type {dset.dtype}", self.path)
        return dset

    def _check_stored(self, dset):
        """The extent must be backed by stored data (it sizes ``read_all``'s array): a contiguous
        dataset by its bytes, a chunked one by as many stored chunks as the extent spans (a chunk
        HDF5 never wrote would read as zeros: invented events)."""
        n = self.event_count
        if self.chunk_length is None:
            stored = dset.id.get_storage_size()
            if stored < n * dset.dtype.itemsize:
                raise EventFormatError(f"/CD/events claims {n} events ({n * dset.dtype.itemsize} bytes) but the file "
                                       f"stores {stored} bytes of it", self.path)
            return
        needed = -(-n // self.chunk_length)
        stored = dset.id.get_num_chunks()
        if stored < needed:
            raise EventFormatError(f"/CD/events claims {n} events, {needed} chunks of {self.chunk_length}, but the "
                                   f"file stores {stored} chunks", self.path)

    def _event_offset(self, index):
        first, locate = self._where
        return locate(index - first) if locate is not None and index >= first else None

    # -- decoding -----------------------------------------------------------------
    def _max_events(self):
        return self.event_count  # the dataset's extent

    def _decode(self):
        return self._events_from(0)

    def _decode_from(self, t_us):
        with self._open() as f:
            start = self._start_index(f, int(t_us))
        return self._events_from(start)

    def _events_from(self, start):
        """Arrays of events from event ``start`` (rounded down to a chunk) to the end."""
        with self._open() as f:
            dset = self._events(f)
            blocks = self._ecf_chunks(dset, start) if self.ecf else self._plain_blocks(dset, start)
            yielded = 0
            for ev, locate in blocks:
                self._where = (yielded, locate)  # for _event_offset, while ev is being checked
                yielded += len(ev)
                yield ev

    def _chunk_error(self, dset, k, message, offset_in_chunk=0):
        """EventFormatError naming chunk k, its events and where it lies in the file."""
        first = k * self.chunk_length
        where = f"/CD/events chunk {k} (events {first}..{min(first + self.chunk_length, self.event_count) - 1}"
        info = dset.id.get_chunk_info_by_coord((first,))
        if info.byte_offset is None:
            return EventFormatError(f"{where}): {message}", self.path)
        return EventFormatError(f"{where}, {info.size} bytes at byte {info.byte_offset}): {message}", self.path,
                                info.byte_offset + offset_in_chunk)

    def _ecf_chunks(self, dset, start):
        size, extent = self.chunk_length, self.event_count
        for k in range(start // size, -(-extent // size)):
            first = k * size
            want = min(size, extent - first)
            try:
                mask, data = dset.id.read_direct_chunk((first,))
            except (RuntimeError, OSError) as e:
                missing = dset.id.get_chunk_info_by_coord((first,)).byte_offset is None
                raise self._chunk_error(dset, k, "was never written" if missing else f"cannot be read ({e})") \
                    from None

            def address(i, first=first, stride=16 if mask & 1 else 0):
                return dset.id.get_chunk_info_by_coord((first,)).byte_offset + stride * i

            if mask & 1:  # HDF5 skipped the optional ECF filter: raw records
                if len(data) < 16 * want:
                    raise self._chunk_error(dset, k, f"raw chunk of {len(data)} bytes, {16 * want} needed")
                ev = np.frombuffer(data, EVENT_DTYPE, count=want).copy()
                ev.view(np.uint16).reshape(want, 8)[:, 3] = 0
                yield ev, address
                continue
            try:
                ev, end = ecf.decode_chunk(data, size, with_end=True)
            except EventFormatError as e:
                raise self._chunk_error(dset, k, f"{e.message} (byte {e.offset} of the chunk)", e.offset) from None
            if len(ev) < want:
                raise self._chunk_error(dset, k, f"holds {len(ev)} events, the dataset extent needs {want}")
            if end < len(data):
                self.violations.add(ECF_TRAILING_BYTES, 1, address(0) + end)
            if len(ev) > want:   # the last chunk: HDF5 encodes it whole, fill records (x = y = p = 0) after the extent
                surplus = int(np.count_nonzero(ev.view(np.uint64)[2 * want::2] & np.uint64(0xFFFFFFFFFFFF)))
                if surplus:
                    self.violations.add(ECF_SURPLUS_EVENTS, surplus, address(0))
            yield ev[:want], address

    def _plain_blocks(self, dset, start):
        step = max(1, min(self.chunk_events, _PLAIN_BLOCK))
        if self.chunk_length:
            step = max(self.chunk_length, step // self.chunk_length * self.chunk_length)
        base = dset.id.get_offset()  # file address of an unchunked dataset, else None
        itemsize, size = dset.dtype.itemsize, self.chunk_length
        raw_chunks = size and dset.id.get_create_plist().get_nfilters() == 0

        def address(index):  # of an event: in the file where stored raw, else unknown
            if base is not None:
                return base + index * itemsize
            chunk = dset.id.get_chunk_info_by_coord((index - index % size,)).byte_offset
            return None if chunk is None else chunk + index % size * itemsize

        for lo in range(start, self.event_count, step):
            hi = min(lo + step, self.event_count)
            try:
                if dset.dtype == EVENT_DTYPE:
                    ev = np.zeros(hi - lo, EVENT_DTYPE)
                    dset.read_direct(ev, np.s_[lo:hi])
                else:
                    ev = as_events(dset[lo:hi])
            except (OSError, ValueError) as e:
                raise EventFormatError(f"/CD/events events {lo}..{hi - 1} cannot be read ({e})",
                                       self.path) from None
            yield ev, (lambda i, lo=lo: address(lo + i)) if base is not None or raw_chunks else None

    # -- seeking ------------------------------------------------------------------
    def _start_index(self, f, t_us):
        """An event index at or before the first event with t >= t_us."""
        dset = self._events(f)
        start = self._index_lookup(f, t_us)
        if start is not None:
            return start
        step = self.chunk_length or _PLAIN_BLOCK
        lo, hi = 0, -(-self.event_count // step) - 1  # last block whose first time is < t_us
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self._first_time(dset, mid * step) < t_us:
                lo = mid
            else:
                hi = mid - 1
        return lo * step

    def _first_time(self, dset, index):
        if not self.ecf:
            return int(dset[index]["t"])
        try:
            mask, data = dset.id.read_direct_chunk((index,))
            if mask & 1:
                return int(np.frombuffer(data, "<i8", 1, 8)[0])
            return ecf.read_header(data, self.chunk_length)[2]
        except (OSError, ValueError) as e:  # EventFormatError is a ValueError
            raise EventFormatError(f"/CD/events chunk {index // self.chunk_length}: cannot read its first "
                                   f"time ({getattr(e, 'message', e)})", self.path) from None

    def _index_lookup(self, f, t_us):
        """Start from /CD/indexes: the last row with ts <= t_us + offset. Metavision's rows say
        that no event before ``id`` is at or after ``ts``. None where the index is unusable."""
        rows = f.get("CD/indexes")
        if not isinstance(rows, h5py.Dataset) or rows.ndim != 1 or rows.shape[0] == 0 or \
                not {"id", "ts"} <= set(rows.dtype.names or ()):
            return None
        try:
            offset = int(_text(rows.attrs, "offset") or 0)  # Metavision reads a missing one as 0
        except ValueError:
            return None
        target = t_us + offset
        lo, hi = 0, rows.shape[0] - 1
        if int(rows[0]["ts"]) > target:
            return 0
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if int(rows[mid]["ts"]) <= target:
                lo = mid
            else:
                hi = mid - 1
        start = int(rows[lo]["id"])
        return start if start <= self.event_count else None


class _IndexRows:
    """Metavision's /CD/indexes rows, built as events stream past.

    Event times are taken relative to the first (``offset`` = minus the first t) and
    bucketed per 2000 us (bucket k + 1 for [2000 k, 2000 (k + 1))), using the running
    maximum so that a time going back never moves a bucket back. The first event of
    each new bucket is a "trigger"; when it arrives, one row per bucket it advances
    is written holding the previous trigger's (id, relative t), starting from
    (0, -1). ``close`` adds the last trigger. So row r names an event before which no
    event is at or after the row's ts, which is what seeking needs.
    """

    def __init__(self):
        self.offset = None
        self.count = 0
        self.buckets = 0
        self.run_max = 0
        self.prev = (0, -1)

    def add(self, t):
        """Rows due for these event times, as an iterator of INDEX_DTYPE arrays."""
        if not len(t):
            return iter(())
        if self.offset is None:
            self.offset = -int(t[0])
        rel = np.maximum.accumulate(np.maximum(t.astype(np.int64) + self.offset, self.run_max))
        bucket = rel // INDEX_PERIOD_US + 1
        before = np.concatenate([[self.buckets], bucket[:-1]])
        trig = np.flatnonzero(bucket > before)
        ids = np.concatenate([[self.prev[0]], self.count + trig])
        ts = np.concatenate([[self.prev[1]], rel[trig]])
        repeats = bucket[trig] - before[trig]
        if len(trig):
            self.prev = (int(ids[-1]), int(ts[-1]))
        self.count += len(t)
        self.buckets, self.run_max = int(bucket[-1]), int(rel[-1])
        return _index_blocks(ids[:-1], ts[:-1], repeats)

    def last_row(self):
        """The row ``close`` adds: the last trigger (None before any event)."""
        return None if self.offset is None else _index_rows([self.prev[0]], [self.prev[1]], [1])


def _index_blocks(ids, ts, repeats, block=CHUNK_EVENTS):
    """INDEX_DTYPE arrays of at most ``block`` rows: row (ids[i], ts[i]) repeated repeats[i] times."""
    i = 0
    while i < len(repeats):
        if repeats[i] > block:  # a long time gap repeats one row many times
            for k in range(0, int(repeats[i]), block):
                yield _index_rows(ids[i:i + 1], ts[i:i + 1], [min(block, int(repeats[i]) - k)])
            i += 1
            continue
        end = i + max(1, int(np.searchsorted(np.cumsum(repeats[i:i + block]), block, side="right")))
        yield _index_rows(ids[i:end], ts[i:end], repeats[i:end])
        i = end


def _index_rows(ids, ts, repeats):
    rows = np.empty(int(np.sum(repeats)), INDEX_DTYPE)
    rows["id"], rows["ts"] = np.repeat(ids, repeats), np.repeat(ts, repeats)
    return rows


class Hdf5Writer(EventWriter):
    """Writes a Metavision HDF5 file, streaming (at most one chunk is buffered).

    compression: "ecf" (default; Metavision's codec, readable by the SDK and by h5py
    with Prophesee's plugin), None (plain h5py reads it), "gzip" or "lzf".
    ECF stores x, y < 2048, p in {0, 1} and non-negative, non-decreasing t; other
    events raise EventFormatError (use compression=None to store them as they are).
    metadata: extra root attributes, written as strings like Metavision's.

    >>> with Hdf5Writer("out.hdf5", width=640, height=480) as w:   # doctest: +SKIP
    ...     for ev in batches: w.write(ev)
    """

    format = "hdf5"

    def __init__(self, path, *, width=None, height=None, compression="ecf", compression_opts=None,
                 metadata=None, chunk_length=CHUNK_EVENTS):
        super().__init__(path, width=width, height=height)
        if compression not in COMPRESSIONS:
            raise ValueError(f"compression must be one of {COMPRESSIONS}, got {compression!r}")
        if compression_opts is not None and compression != "gzip":
            raise ValueError(f"compression_opts is for gzip (its level), not {compression!r}")
        if not 1 <= int(chunk_length) <= ecf.MAX_CHUNK_EVENTS:
            raise ValueError(f"chunk_length must be in 1..{ecf.MAX_CHUNK_EVENTS}, got {chunk_length}")
        self.compression = compression
        self.chunk_length = int(chunk_length)
        try:
            self._file = h5py.File(self.path, "w")
        except OSError as e:
            raise EventFormatError(f"cannot create the file ({e})", self.path) from None
        attrs = {"version": "1.0"}
        if self.width is not None and self.height is not None:
            attrs.update(geometry=f"{self.width}x{self.height}", width=str(self.width), height=str(self.height))
        attrs.update({str(k): str(v) for k, v in (metadata or {}).items()})
        for key, value in attrs.items():
            self._file.attrs.create(key, value, dtype=ASCII)
        cd = self._file.create_group("CD")
        if compression == "ecf":
            self._events = self._create_ecf_dataset(cd)
        else:
            self._events = cd.create_dataset("events", (0,), EVENT_DTYPE, maxshape=(None,),
                                             chunks=(self.chunk_length,), compression=compression,
                                             compression_opts=compression_opts)
        self._indexes = self._empty(cd, "indexes", INDEX_DTYPE)
        trigger = self._file.create_group("EXT_TRIGGER")
        self._empty(trigger, "events", TRIGGER_DTYPE)
        self._empty(trigger, "indexes", INDEX_DTYPE)
        self._buffer = empty(self.chunk_length)
        self._filled = 0
        self._stored = 0  # events in /CD/events
        self._index = _IndexRows()
        self._pending_rows = []
        self._last_t = None

    def _create_ecf_dataset(self, group):
        """ECF through the low-level API: h5py refuses unregistered filter numbers, HDF5 takes
        an optional one. Chunks are then encoded here and written directly."""
        dcpl = h5p.create(h5p.DATASET_CREATE)
        dcpl.set_chunk((self.chunk_length,))
        dcpl.set_filter(ecf.FILTER_ID, h5z.FLAG_OPTIONAL, ())
        space = h5s.create_simple((0,), (h5s.UNLIMITED,))
        dsid = h5d.create(group.id, b"events", h5t.py_create(EVENT_DTYPE, logical=True), space, dcpl=dcpl)
        return h5py.Dataset(dsid)

    @staticmethod
    def _empty(group, name, dtype):
        return group.create_dataset(name, (0,), dtype, maxshape=(None,), chunks=(CHUNK_EVENTS,))

    def _check_ecf(self, ev):
        bad = (ev["x"] >= 2048) | (ev["y"] >= 2048) | ((ev["p"] != 0) & (ev["p"] != 1)) | (ev["t"] < 0)
        if bad.any():
            i = int(np.argmax(bad))
            raise EventFormatError(f"event {self.count + i} (x={ev['x'][i]}, y={ev['y'][i]}, p={ev['p'][i]}, "
                                   f"t={ev['t'][i]}) cannot be stored with ECF: it needs x, y < 2048, p 0 or 1 "
                                   "and t >= 0 (compression=None stores any values)", self.path)
        t = ev["t"]
        back = t[1:] < t[:-1]
        if self._last_t is not None and t[0] < self._last_t:
            i = 0
        elif back.any():
            i = int(np.argmax(back)) + 1
        else:
            return
        prev = self._last_t if i == 0 else int(t[i - 1])
        raise EventFormatError(f"event {self.count + i}: t={t[i]} is below the previous {prev}; ECF stores "
                               "times in order only (it would store the maximum so far). Sort or clamp them "
                               "(reader option monotonic=...) or write with compression=None", self.path)

    def _write(self, ev):
        if not len(ev):
            return
        if self.compression == "ecf":
            self._check_ecf(ev)
        self._last_t = int(ev["t"][-1])
        for rows in self._index.add(ev["t"]):
            self._add_index_rows(rows)
        ev = np.ascontiguousarray(ev)
        i, size = 0, self.chunk_length
        while i < len(ev):
            if self._filled == 0 and len(ev) - i >= size:  # a whole chunk: no copy
                self._store_chunk(ev[i:i + size])
                i += size
                continue
            take = min(size - self._filled, len(ev) - i)
            _records(self._buffer)[self._filled:self._filled + take] = _records(ev)[i:i + take]
            self._filled += take
            i += take
            if self._filled == size:
                self._store_chunk(self._buffer)
                self._filled = 0

    def _store_chunk(self, chunk):
        n, first = len(chunk), self._stored
        if self.compression == "ecf":  # Metavision style: a short last chunk holds n events
            self._events.id.set_extent((first + n,))
            self._events.id.write_direct_chunk((first,), ecf.encode_chunk(chunk), 0)
        else:
            if chunk.view(np.uint16).reshape(n, 8)[:, 3].any():  # the caller's padding bytes
                chunk = chunk.copy()
                chunk.view(np.uint16).reshape(n, 8)[:, 3] = 0
            self._events.resize((first + n,))
            self._events[first:first + n] = chunk
        self._stored += n

    def _add_index_rows(self, rows, final=False):
        self._pending_rows.append(rows)
        if final or sum(len(r) for r in self._pending_rows) >= CHUNK_EVENTS:
            rows = np.concatenate(self._pending_rows)
            self._pending_rows = []
            first = self._indexes.shape[0]
            self._indexes.resize((first + len(rows),))
            self._indexes[first:] = rows

    def _close(self):
        try:
            if self._filled:
                self._store_chunk(self._buffer[:self._filled])
                self._filled = 0
            last = self._index.last_row()
            if last is not None:
                self._add_index_rows(last, final=True)
                self._indexes.attrs.create("offset", str(self._index.offset), dtype=ASCII)
        finally:
            self._file.close()
