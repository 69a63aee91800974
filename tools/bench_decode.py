"""Decode throughput: eventflow's readers beside expelliarmus, in one run, on one thread.

usage: python tools/bench_decode.py [--n 10000000] [--dir /tmp/eventflow-bench] [--repeats 5]
                                    [--out results.jsonl]

The stream is the one ../shared/bench/bench_decode.py uses: IMX636 1280x720, N events,
t uniform over 1 s, sorted (seed 0). Files are written once into --dir and read with a warm
page cache, so this measures decoding, not the disk:
  evt2  our own spec-made EVT 2.0 file (1280x720 header), read by both
  evt3  expelliarmus' EVT 3.0 file (one ADDR_Y + ADDR_X per event), read by both; expelliarmus
        decodes its times differently (it counts TIME_LOW wraps as overflows), the words are the same
  evt3-vect  the same events written by eventflow's EVT 3.0 writer (vector words), read by eventflow
  dat   expelliarmus' DAT file, read by both
  hdf5-ecf   the same events in Metavision HDF5 with ECF chunks written by eventflow, read by eventflow
Before timing, each file is dropped from the page cache and read back once (--cache read-back), so
that the cache holds it as it holds any recording read from disk. --cache as-is leaves the cache
alone: a file this script has just written stays in 4 KiB pages, which cost ~6x more to map here
(runs before 2026-12-02 13:10 measured that state).
Cases: expelliarmus read_chunk(65536) over the whole file (its streaming read) and read();
eventflow iterating the reader (streaming, bounded memory) and read_all().
Every case checks its event count; each number is the median of --repeats rounds, every round
timing all of a file's cases one after another; the speed-up over expelliarmus is the median of
the per-round ratios (the machine's speed drifts between rounds, less within one).
Thread counts are pinned to one (NUMBA_NUM_THREADS, OMP_NUM_THREADS) and printed.
"""
from __future__ import annotations

import os

os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

import eventflow  # noqa: E402

W, H = 1280, 720


def make_events(n, seed=0):
    rng = np.random.default_rng(seed)
    ev = eventflow.empty(n)
    ev["t"] = np.sort(rng.integers(0, 1_000_000, n, dtype=np.int64))
    ev["x"] = rng.integers(0, W, n)
    ev["y"] = rng.integers(0, H, n)
    ev["p"] = rng.integers(0, 2, n)
    return ev


def write_evt2(path, ev):
    """EVT 2.0 per the specification: a TIME_HIGH word whenever t >> 6 changes, then CD words."""
    t = ev["t"].astype(np.uint64)
    th = t >> np.uint64(6)
    change = np.ones(len(ev), bool)
    change[1:] = th[1:] != th[:-1]
    pos = np.arange(len(ev)) + np.cumsum(change)
    out = np.empty(len(ev) + int(change.sum()), np.uint32)
    out[pos] = ((ev["p"].astype(np.uint32) << 28) | ((t & np.uint64(63)).astype(np.uint32) << 22)
                | (ev["x"].astype(np.uint32) << 11) | ev["y"].astype(np.uint32))
    out[pos[change] - 1] = np.uint32(0x8 << 28) | (th[change] & np.uint64(0x0FFFFFFF)).astype(np.uint32)
    with open(path, "wb") as f:
        f.write(f"% evt 2.0\n% format EVT2;height={H};width={W}\n% geometry {W}x{H}\n% end\n".encode())
        f.write(out.astype("<u4").tobytes())


def read_back(path):
    """Drop ``path`` from the page cache and read it back sequentially, so that it sits there as a
    recording read from disk does: on Linux 6.18 with ext4, readahead fills the cache with large
    folios, which map about 6x faster than the 4 KiB pages a file just written by this process
    sits in (76 MiB: 1.4 ms against 9.4, measured 2026-12-02). Both readers then read the same
    cached pages. Returns False where the cache could not be dropped (no posix_fadvise)."""
    if not hasattr(os, "posix_fadvise"):
        return False
    with open(path, "rb") as f:
        os.fsync(f.fileno())            # (only clean pages can be dropped)
        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
        while f.read(1 << 20):
            pass
    return True


def interleaved(cases, repeats):
    """Time every case once per round, for ``repeats`` rounds after one warm-up round (JIT, page
    cache): on a machine whose speed drifts, each round's cases see the same machine, so their
    ratio per round is steadier than a ratio of medians. Returns {case: (seconds, last result)}."""
    results = {case: fn() for case, fn in cases.items()}
    times = {case: [] for case in cases}
    for _ in range(repeats):
        for case, fn in cases.items():
            t0 = time.perf_counter()
            results[case] = fn()
            times[case].append(time.perf_counter() - t0)
    return {case: (times[case], results[case]) for case in cases}


def count_stream(reader):
    return sum(len(c) for c in reader)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000_000)
    ap.add_argument("--dir", default="/tmp/eventflow-bench")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", help="append JSON lines here")
    ap.add_argument("--skip-expelliarmus", action="store_true")
    ap.add_argument("--cache", choices=("read-back", "as-is"), default="read-back",
                    help="page-cache state of the files: dropped and read back sequentially, as a recording read "
                         "from disk (default), or as it is (a file this script has just written sits in 4 KiB pages)")
    a = ap.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    ev = make_events(a.n)
    files = {k: os.path.join(a.dir, f"{k}_{a.n}{ext}") for k, ext in
             (("evt2", ".raw"), ("evt3", ".raw"), ("evt3-vect", ".raw"), ("dat", ".dat"), ("hdf5-ecf", ".hdf5"))}
    have_xp = not a.skip_expelliarmus
    if have_xp:
        try:
            from expelliarmus import Wizard
        except ImportError:
            have_xp = False
    if not os.path.exists(files["evt2"]):
        write_evt2(files["evt2"], ev)
    if not os.path.exists(files["evt3-vect"]):
        eventflow.write(files["evt3-vect"], ev, width=W, height=H)
    if not os.path.exists(files["hdf5-ecf"]):
        eventflow.write(files["hdf5-ecf"], ev, width=W, height=H)
    if have_xp:
        from expelliarmus.wizard.clib import event_t
        xev = np.empty(a.n, dtype=np.dtype(event_t))
        for k in "txyp":
            xev[k] = ev[k]
        for k in ("evt3", "dat"):
            if not os.path.exists(files[k]):
                Wizard(encoding=k).save(files[k], xev)

    if a.cache == "read-back":
        a.cache = "read-back" if all(read_back(f) for f in files.values() if os.path.exists(f)) else "as-is"
    import numba
    env = {"page_cache": a.cache, "python": platform.python_version(), "numpy": np.__version__,
           "numba": numba.__version__, "eventflow": eventflow.__version__,
           "cpu": platform.processor() or platform.machine(), "nproc": os.cpu_count(),
           "NUMBA_NUM_THREADS": numba.config.NUMBA_NUM_THREADS,
           "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"), "loadavg": open("/proc/loadavg").read().split()[0]}
    if have_xp:
        import importlib.metadata as md
        env["expelliarmus"] = md.version("expelliarmus")
    print("# " + json.dumps(env))
    print("| file | reader | Mev/s (median) | min..max s | events |\n|---|---|---|---|---|")
    rows = []

    def report(fname, case, med, lo, hi, n):
        rate = a.n / med / 1e6
        ok = "" if n == a.n else f" (saw {n:,})"
        print(f"| {fname} | {case} | {rate:.0f} | {lo:.3f}..{hi:.3f} | {n:,}{ok} |", flush=True)
        rows.append({"bench": "decode", "case": f"{fname}: {case}", "median": rate, "unit": "Mev/s",
                     "n_events": a.n, "events_seen": n, **env})

    geometry = {"dat": {"width": W, "height": H}}
    for fname in ("evt2", "evt3", "evt3-vect", "dat", "hdf5-ecf"):
        path = files[fname]
        if not os.path.exists(path):
            continue
        r = eventflow.open(path, **geometry.get(fname, {}))
        cases = {"eventflow: iterate reader (streaming)": lambda r=r: count_stream(r),
                 "eventflow: read_all()": lambda r=r: len(r.read_all())}
        if have_xp and fname in ("evt2", "evt3", "dat"):
            wc = Wizard(encoding=fname, fpath=path, chunk_size=65536)
            wz = Wizard(encoding=fname, fpath=path)

            def chunks(wc=wc):
                wc.reset()
                return sum(len(c) for c in wc.read_chunk())
            cases["expelliarmus: read_chunk(65536)"] = chunks
            cases["expelliarmus: read()"] = lambda wz=wz: len(wz.read())
        times = interleaved(cases, a.repeats)
        for case, (ts, n) in times.items():
            report(fname, case, statistics.median(ts), min(ts), max(ts), n)
        ours, theirs = "eventflow: iterate reader (streaming)", "expelliarmus: read_chunk(65536)"
        if theirs in times:
            ratios = sorted(b / e for e, b in zip(times[ours][0], times[theirs][0]))
            med = statistics.median(ratios)
            print(f"| {fname} | streaming speed-up over expelliarmus' read_chunk, per round | {med:.2f}x "
                  f"| {ratios[0]:.2f}..{ratios[-1]:.2f}x | |", flush=True)
            rows.append({"bench": "decode", "case": f"{fname}: speed-up over expelliarmus read_chunk",
                         "median": med, "min": ratios[0], "max": ratios[-1], "unit": "x", **env})
    if a.out:
        with open(a.out, "a") as f:
            for row in rows:
                f.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
