"""``eventflow simulate SCENE --out FILE``: simulate a registered scene and write its events and labels.

    eventflow simulate gesture --out g.hdf5 --seconds 2 --seed 7
    eventflow simulate digits --out d.npz --sensor dvs128 --set background_rate_hz=0 --param digit=3
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time

from eventflow.formats import writer_for

from ..progress import progress
from ._output import removed_on_failure

DESCRIPTION = """Render SCENE over time and turn it into events the way a DVS does (log-intensity
threshold crossings with per-pixel mismatch, refractory period, background activity, hot pixels,
shot noise). Events go to OUT, format by extension, streamed chunk by chunk; the scene's ground
truth is written beside it (OUT without its extension, plus the scene's suffix). Same seed, same
events. Prints what it wrote to stderr."""
EPILOG = """scenes: gesture, digits, detection, flow (each has a default sensor).
sensors: dvs128 (128x128), davis346 (346x260), gen1 (304x240), imx636 (1280x720), nmnist (34x34).
writable, by extension: .hdf5/.h5, .raw (EVT 3.0), .npz, .npy"""


def register(subparsers) -> None:
    sp = subparsers.add_parser("simulate",
                               help="simulate a scene (gesture, digits, detection, flow) into an event file",
                               description=DESCRIPTION, epilog=EPILOG,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
    sp.add_argument("scene", metavar="SCENE", help="scene name: gesture, digits, detection or flow")
    sp.add_argument("--out", required=True, metavar="FILE", help="event file to write (.hdf5, .h5, .raw, .npz, .npy)")
    sp.add_argument("--seconds", type=float, help="length of the recording (default: the scene's own duration)")
    sp.add_argument("--seed", type=int, default=0, help="seed of the scene and of the sensor noise (default 0)")
    sp.add_argument("--sensor", metavar="NAME",
                    help="sensor preset (default: the scene's, with that scene's adjustments); the scene is "
                         "built at the sensor's geometry")
    sp.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                    help="override a sensor field, e.g. --set contrast_on=0.3 --set background_rate_hz=0 "
                         "(repeatable; see eventflow.sim.SensorConfig)")
    sp.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                    help="a scene parameter passed to the scene's make_scene (repeatable; numbers and "
                         "true/false are converted)")
    sp.add_argument("--chunk-ms", type=float, default=10.0,
                    help="simulate and write this much time at a time (default 10 ms)")
    sp.set_defaults(func=run_simulate)


def _pairs(items, option):
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{option} expects FIELD=VALUE, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def parse_value(text: str):
    """``"3"`` -> 3, ``"0.5"`` -> 0.5, ``"true"``/``"false"`` -> bool, ``"none"`` -> None, else the text."""
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low == "none":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _sensor_overrides(base, texts: dict) -> dict:
    """Values of ``--set``, typed like the sensor's fields (unknown fields are left for ``replace`` to name)."""
    kinds = {f.name: type(getattr(base, f.name)) for f in dataclasses.fields(base)}
    out = {}
    for key, text in texts.items():
        kind = kinds.get(key, str)
        try:
            out[key] = kind(float(text)) if kind in (int, float) else kind(text)
        except ValueError:
            raise ValueError(f"--set {key}={text}: {key} must be a number") from None
    return out


def parse_ranges(items: list[str]) -> dict:
    """``--vary FIELD=LO:HI`` items as ``{field: (lo, hi)}`` (the sensor checks the fields)."""
    out = {}
    keys = [item.partition("=")[0].strip() for item in items]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise ValueError(f"--vary {twice[0]} given more than once")
    for key, text in _pairs(items, "--vary").items():
        lo, sep, hi = text.partition(":")
        try:
            out[key] = (float(lo), float(hi))
        except ValueError:
            raise ValueError(f"--vary {key}={text}: expected LO:HI, two numbers") from None
        if not sep:
            raise ValueError(f"--vary {key}={text}: expected LO:HI, two numbers")
    return out


def sensor_with_overrides(scene: str, preset: str | None, sets: list[str]):
    """The sensor of ``scene`` (``--sensor`` preset or the scene's own) with the ``--set FIELD=VALUE`` items applied."""
    from eventflow.sim import scene_sensor

    base = scene_sensor(scene, preset)
    return base.replace(**_sensor_overrides(base, _pairs(sets, "--set")))


def run_simulate(a) -> int:
    from eventflow.sim import simulate_steps
    from eventflow.sim.scenes import make_scene

    sensor = sensor_with_overrides(a.scene, a.sensor, a.set)
    params = {k: parse_value(v) for k, v in _pairs(a.param, "--param").items()}
    if a.chunk_ms <= 0:
        raise ValueError(f"--chunk-ms must be > 0, got {a.chunk_ms}")
    scene = make_scene(a.scene, sensor.width, sensor.height, a.seed, a.seconds, **params)
    seconds = scene.duration_s if a.seconds is None else a.seconds
    if not seconds > 0:
        raise ValueError(f"--seconds must be > 0, got {seconds}")
    t_end, chunk = int(round(seconds * 1e6)), max(1, int(round(a.chunk_ms * 1e3)))
    n, state, started = 0, None, time.perf_counter()
    with (progress(t_end, f"simulate {a.scene}", "us") as bar, removed_on_failure(a.out),
          writer_for(a.out, width=sensor.width, height=sensor.height) as w):
        for t, events, state in simulate_steps(scene, sensor, a.seed, seconds, chunk):
            w.write(events)
            n += len(events)
            if bar is not None:
                bar.update(t - bar.n)
    elapsed = time.perf_counter() - started
    truth = scene.save_ground_truth(os.path.splitext(a.out)[0])
    c = state.counts()
    print(f"wrote {n:,} events ({n / seconds / 1e6:.3f} Mev/s over {seconds:g} s, {sensor.name} "
          f"{sensor.width}x{sensor.height}, seed {a.seed}) to {a.out}", file=sys.stderr)
    print(f"  signal {c['signal']:,}, background {c['background']:,}, hot {c['hot']:,}, shot {c['shot']:,}; "
          f"refractory dropped {c['suppressed']:,}; {c['samples']:,} frames rendered in {elapsed:.2f} s "
          f"({seconds / elapsed:.1f}x real time)", file=sys.stderr)
    print("  ground truth: " + (", ".join(truth) if truth else "none"), file=sys.stderr)
    return 0
