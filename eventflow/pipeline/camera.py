"""A live camera (``camera:`` or ``camera:SERIAL``) through neuromorphic-drivers, an optional
extra (``pip install neuromorphic-drivers``): Prophesee EVK4/EVK3 HD and iniVation DVXplorer /
DAVIS 346 on Linux, macOS and Windows.

Bias and rate-control settings pass through as options: ``biases={"diff_on": 10, ...}``,
``rate_limiter={"reference_period_us": 200, "maximum_events_per_period": 4000}`` and any other
field of the device's ``Configuration`` dataclass; an unknown name raises and lists the known ones.
Timestamps are the camera's clock (microseconds since it started); each batch's ``meta``
carries ``system_time_us`` (the driver's host time for the packet, Unix microseconds) and
``host_offset_us`` (that minus the packet's last event time), to relate the two clocks.

>>> driver_events_to_eventcd(np.zeros(2, [("t", "<u8"), ("x", "<u2"), ("y", "<u2"), ("on", "?")]))["p"].tolist()
[0, 0]
"""
from __future__ import annotations

import dataclasses
import threading
import time

import numpy as np

from ..events import empty
from .net_common import Counters, LiveSource
from .net_wire import Rejected, check_events
from .stage import Batch

__all__ = ["CameraSource", "clock_meta", "driver_configuration", "driver_events_to_eventcd", "list_cameras"]

INSTALL_HINT = "the camera: source needs the optional package neuromorphic-drivers (pip install neuromorphic-drivers)"
_MODULES = {"PROPHESEE_EVK4": "prophesee_evk4", "PROPHESEE_EVK3_HD": "prophesee_evk3_hd",
            "INIVATION_DVXPLORER": "inivation_dvxplorer", "INIVATION_DAVIS346": "inivation_davis346",
            "CENTURYARKS_VGA": "centuryarks_vga", "LUCID_TRITON": "lucid_triton"}


def _driver():
    try:
        import neuromorphic_drivers
    except ImportError:
        raise ValueError(INSTALL_HINT) from None
    return neuromorphic_drivers


def driver_events_to_eventcd(packet_events: np.ndarray) -> np.ndarray:
    """The driver's polarity events (``t u64, x u16, y u16, on bool``; also accepts ``p`` or
    ``polarity`` for ``on``) as a new EventCD array; ``p`` is 1 for ON.

    >>> raw = np.array([(5, 1, 2, True)], [("t", "<u8"), ("x", "<u2"), ("y", "<u2"), ("on", "?")])
    >>> driver_events_to_eventcd(raw)[["x", "y", "p", "t"]].tolist()
    [(1, 2, 1, 5)]
    """
    names = packet_events.dtype.names or ()
    pol = next((k for k in ("on", "polarity", "p") if k in names), None)
    missing = [k for k in ("t", "x", "y") if k not in names] + ([] if pol else ["on"])
    if missing:
        raise ValueError(f"driver packet dtype {packet_events.dtype} lacks field(s) {missing}")
    t = packet_events["t"]
    if len(t) and t.dtype.kind == "u" and int(t.max()) >= 1 << 63:
        raise ValueError("driver timestamp exceeds the int64 range")
    out = empty(len(packet_events))
    out["x"] = packet_events["x"]
    out["y"] = packet_events["y"]
    out["p"] = packet_events[pol] != 0
    out["t"] = t.astype(np.int64)
    return out


def list_cameras(driver=None) -> list:
    """Cameras the driver sees: dicts with name, serial, connection, error."""
    nd = driver or _driver()
    try:
        devices = nd.list_devices()
    except Exception as e:  # the extension raises RuntimeError when USB is unavailable
        raise ValueError(f"camera: neuromorphic-drivers cannot list devices ({e}); no USB access?") from None
    return [{"name": d.name.value, "serial": d.serial, "connection": d.connection.value, "error": d.error}
            for d in devices]


def driver_configuration(driver, device_name: str, options: dict):
    """The device's ``Configuration`` with ``options`` applied (``biases`` merged field by
    field, ``rate_limiter`` a dict); ValueError naming any unknown setting."""
    module = getattr(driver, _MODULES.get(device_name, ""), None)
    if module is None:
        raise ValueError(f"camera: no configuration known for device {device_name!r}")
    cfg = module.Configuration()
    fields = {f.name for f in dataclasses.fields(cfg)}
    changes = {}
    for key, value in options.items():
        if key not in fields:
            raise ValueError(f"camera option {key!r} is not a {device_name} setting; "
                             f"known: {', '.join(sorted(fields))}")
        if key == "biases" and isinstance(value, dict):
            known = {f.name for f in dataclasses.fields(cfg.biases)}
            bad = sorted(set(value) - known)
            if bad:
                raise ValueError(f"camera biases {bad} unknown for {device_name}; known: {', '.join(sorted(known))}")
            value = dataclasses.replace(cfg.biases, **{k: int(v) for k, v in value.items()})
        elif key == "rate_limiter" and isinstance(value, dict):
            value = module.RateLimiter(**{k: int(v) for k, v in value.items()})
        changes[key] = value
    return dataclasses.replace(cfg, **changes)


def clock_meta(system_time_s, events) -> dict:
    """The driver's host time for a packet (Unix us) and its offset to the camera clock:
    ``host_offset_us`` = host Unix time - camera time of the packet's last event."""
    if system_time_s is None or not len(events):
        return {}
    host_us = int(round(float(system_time_s) * 1e6))
    return {"system_time_us": host_us, "host_offset_us": host_us - int(events["t"][-1])}


def _packet_events(packet):
    """(polarity events or None, overflow count) from a driver packet (object or dict)."""
    if packet is None:
        return None, 0
    if isinstance(packet, dict):
        ev = packet.get("polarity_events", packet.get("dvs_events"))
        ovf = packet.get("polarity_events_overflow_indices", packet.get("dvs_events_overflow_indices"))
    else:
        ev = getattr(packet, "polarity_events", None)
        ovf = getattr(packet, "polarity_events_overflow_indices", None)
    return ev, 0 if ovf is None else len(ovf)


class CameraSource(LiveSource):
    """Events from a live camera. ``serial=None`` takes the first camera found."""

    def __init__(self, serial: str | None = None, geometry=None, *, name: str = "source", driver=None,
                 iterator_timeout_s: float = 0.05, **settings):
        nd = driver or _driver()
        found = list_cameras(nd)
        usable = [d for d in found if d["error"] is None]
        pick = [d for d in usable if serial in (None, "", d["serial"])]
        if not pick:
            listing = "; ".join(f"{d['name']} serial {d['serial']} ({d['error'] or 'ok'})" for d in found) or "none"
            want = "a camera" if not serial else f"a camera with serial {serial}"
            raise ValueError(f"camera: {want} was not found; neuromorphic-drivers lists: {listing}")
        dev = pick[0]
        key = nd.Name(dev["name"]).name
        config = driver_configuration(nd, key, settings) if settings else None
        self.name, self.serial, self.device_name = name, dev["serial"], dev["name"]
        props = nd.name_to_properties(nd.Name(dev["name"]))
        self._geometry = (int(props.width), int(props.height))
        if geometry is not None and tuple(geometry) != self._geometry:
            raise ValueError(f"camera {dev['name']} is {self._geometry[0]}x{self._geometry[1]}, the pipeline "
                             f"expects {geometry[0]}x{geometry[1]}")
        self._device = nd.open(configuration=config, serial=dev["serial"], iterator_timeout=float(iterator_timeout_s))
        self._lock = threading.Lock()
        self._closed = False
        self._counters = Counters(("packets", "driver_overflows"))

    def _poll(self, left_s: float) -> Batch | None:
        """One driver packet (the driver waits up to its ``iterator_timeout``)."""
        status, packet = next(self._device)
        raw, overflows = _packet_events(packet)
        self._counters.add("driver_overflows", overflows)
        if raw is None or not len(raw):
            return None
        self._counters.add("packets")
        self._counters.heard()
        ev = driver_events_to_eventcd(raw)
        try:
            check_events(ev, *self._geometry)
        except Rejected as e:
            self._counters.reject(e.reason, e.events)
            return None
        self._counters.received += len(ev)
        w, h = self._geometry
        return Batch(events=ev, t_host_ns=time.monotonic_ns(), width=w, height=h,
                     meta=clock_meta(getattr(status, "system_time", None), ev))

    def _release(self) -> None:
        self._device.close()
