"""The command line as users run it: a separate process, JSON out, clean one-line errors."""
from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import eventflow

from .conftest import real


def run(*args):
    p = subprocess.run([sys.executable, "-m", "eventflow", *map(str, args)], capture_output=True, text=True,
                       timeout=300)
    return p.returncode, p.stdout, p.stderr


def test_info_json_has_the_contract_keys():
    rc, out, err = run("info", real("evt3_gen41_219k.raw"), "--json")
    assert rc == 0, err
    info = json.loads(out)
    assert {k: info[k] for k in ("format", "width", "height", "events", "t_first_us", "t_last_us")} == {
        "format": "evt3", "width": 1280, "height": 720, "events": 219_596,
        "t_first_us": 11_718_656, "t_last_us": 11_727_457}
    assert info["violations"] == {"time_low_decrease": 9}


def test_info_text_names_rate_and_duration():
    rc, out, _ = run("info", real("evt2_gen3_521k.raw"))
    assert rc == 0 and "521,252" in out and "duration" in out and "Mev/s" in out


def _npz(**members) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **members)
    return buf.getvalue()


def _npz_claiming(n: int) -> bytes:
    """An .npz whose member x's header claims n uint16 values, with no data behind it."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<u2", "fortran_order": False, "shape": (n,)})
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("x.npy", header.getvalue())
        for k in "ypt":
            z.writestr(f"{k}.npy", _npy(np.zeros(1, np.int64)))
    return buf.getvalue()


def _npy(a) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


def _corrupt_npz() -> bytes:
    ev = {k: np.arange(5000, dtype=np.int64) * 7919 % 1000 for k in "xypt"}
    raw = bytearray(_npz(**ev))
    at = raw.index(b"t.npy") + 200      # inside t's deflate stream
    raw[at:at + 64] = bytes(64)
    return bytes(raw)


_FIELDS = {k: np.zeros(3, np.int64) for k in "xypt"}


@pytest.mark.parametrize("content,name,needle", [
    (b"", "empty.raw", "RAW header gives no EVT version"),
    (_npz_claiming(1 << 40), "huge.npz", "member 'x' claims (1099511627776,)"),
    (_npz(**_FIELDS, width=np.array([3, 4])), "w.npz", "member 'width' should be one integer"),
    (_corrupt_npz(), "bad.npz", "member 't'"),
    (_npz(x=np.array([1, 2]), y=np.array([1, 2]), p=np.array([70000, 1]), t=np.array([0, 5])), "p.npz",
     "field 'p': values 1..70000 do not fit int16"),
    (_npz(x=np.array([1, 2]), y=np.array([1, 2]), p=np.array([0, 1]), t=np.array([0, 1.7e19])), "t.npz",
     "field 't': values 0.0..1.7e+19 do not fit int64"),
    (_npy(np.array([(-1, 2, 1, 5)], dtype=[("x", "i2"), ("y", "i2"), ("p", "i1"), ("t", "i8")])), "neg.npy",
     "events 0..0: field 'x': values -1..-1 do not fit uint16"),
    (b"\x00\x01garbage", "x.hdf5", "not a valid .hdf5 file"),
    (b"hello", "x.txt", "unknown extension"),
])
def test_bad_input_is_one_line_exit_2_no_traceback(tmp_path, content, name, needle):
    p = tmp_path / name
    p.write_bytes(content)
    rc, out, err = run("info", p)
    assert rc == 2 and "Traceback" not in err and needle in err and name in err
    assert len(err.strip().splitlines()) == 1


def test_strict_flag_fails_on_a_real_glitch_with_its_offset():
    rc, _, err = run("info", real("evt3_gen41_219k.raw"), "--strict")
    assert rc == 2 and "byte " in err and "time_low_decrease" in err and "Traceback" not in err


@pytest.mark.parametrize("ext", [".raw", ".npz", ".npy"])
def test_convert_round_trips(tmp_path, ext):
    src = real("evt2_gen3_539k.raw")
    out = tmp_path / f"conv{ext}"
    rc, _, err = run("convert", src, out)
    assert rc == 0, err
    a = eventflow.open(src).read_all()
    b = eventflow.open(out).read_all()
    assert np.array_equal(a, b)
    if ext == ".npy":  # the file itself holds the padded EventCD layout
        assert np.load(out).dtype == eventflow.EVENT_DTYPE


def test_convert_to_unknown_extension_fails_cleanly(tmp_path):
    rc, _, err = run("convert", real("ncars_2009.dat"), tmp_path / "x.mp4")
    assert rc == 2 and "cannot write .mp4" in err and "Traceback" not in err


def test_bench_snn_json_lines_have_the_contract_keys():
    rc, out, err = run("bench", "snn", "--json", "--steps", "2", "--warmup", "1")
    assert rc == 0, err
    rows = [json.loads(line) for line in out.strip().splitlines()]
    assert [r["case"] for r in rows] == ["b1", "b16"]
    for r in rows:
        assert r["bench"] == "snn" and r["unit"] == "ms/step" and r["median"] > 0


def test_info_sample_is_the_bundled_simulated_gesture(capsys):
    import json as _json
    import os as _os

    import eventflow as _ef
    from eventflow.formats.aedat import read_gesture_labels

    from eventflow.cli import main

    assert main(["info", "--sample", "--json"]) == 0
    info = _json.loads(capsys.readouterr().out)
    assert (info["format"], info["width"], info["height"]) == ("hdf5", 128, 128) and info["events"] > 100_000
    labels = read_gesture_labels(_os.path.splitext(_ef.sample_path())[0] + "_labels.csv")
    assert len(labels) == 3 and labels["t_end"][-1] <= info["t_last_us"]
