"""Event binning kernels (numba) beside the numpy references they must equal.

Events come in as the flat uint64 view of EVENT_DTYPE arrays (word 0: x | y << 16 |
p << 32, word 1: t): the frame kernels take that view itself (``words``), the voxel kernels
its strided columns of first words (``xyp_col``) and of times. Frames are flat int16 arrays
laid out [T, 2, H, W]. Every kernel skips (and counts) events outside the geometry or with
a polarity other than 0 / 1 instead of writing out of bounds.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .words import xyp

U = np.uint64


@njit(cache=True, nogil=True)
def first_at_or_after(t_col, start, n, t_end):
    """Index of the first event in start..n-1 with t >= t_end (times sorted), or n."""
    lo = start
    hi = n
    while lo < hi:
        mid = (lo + hi) >> 1
        if t_col[mid] < t_end:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True, nogil=True)
def _count_checked(words, start, stop, frame, width, height, binary):
    hw = height * width
    W = U(width)
    H = U(height)
    skipped = 0
    for e in range(start, stop):
        x, y, p = xyp(words[2 * e])
        if x < W and y < H and p <= U(1):
            idx = np.int64(p) * hw + np.int64(y) * width + np.int64(x)
            if binary:
                frame[idx] = 1
            else:
                frame[idx] += 1
        else:
            skipped += 1
    return skipped


CHECK_BLOCK = 64


@njit(cache=True, nogil=True)
def count_into_frame(words, start, stop, frame, width, height, binary):
    """Count events start..stop-1 into one flat frame [2, H, W]; returns the number skipped.

    ``words`` is the events' flat uint64 view (event e's x | y << 16 | p << 32 at ``2 e``).
    Per block of events, one branch-free (vectorised) pass computes every flat index and
    the block's maxima of x, y and p; a block whose maxima lie inside the geometry is then
    counted by a loop that only scatters (measured 1.3x the fused loop), other blocks take
    the checked loop. The block's words are read as a zero-based slice with the constant
    stride 2 (``blk[2 * e]``), which LLVM vectorises as an interleaved load: on an AVX-512
    machine 2.4x the same loop over the strided column ``words[0::2]``, whose stride is
    known only at run time (docs/benchmarks.md, 2026-12-02).
    """
    if 2 * height * width > 1 << 32:   # (a frame of over 8 GiB) the uint32 indices would wrap
        return _count_checked(words, start, stop, frame, width, height, binary)
    hw = U(height * width)
    wd = U(width)
    skipped = 0
    idx = np.empty(CHECK_BLOCK, np.uint32)
    for s in range(start, stop, CHECK_BLOCK):
        e_end = min(s + CHECK_BLOCK, stop)
        blk = words[2 * s:2 * e_end]
        m = e_end - s
        mx = U(0)
        my = U(0)
        mp = U(0)
        for e in range(m):
            x, y, p = xyp(blk[2 * e])
            mx = max(mx, x)
            my = max(my, y)
            mp = max(mp, p)
            idx[e] = np.uint32(p * hw + y * wd + x)
        if mx < width and my < height and mp <= 1:
            if binary:
                for e in range(m):
                    frame[idx[e]] = 1
            else:
                for e in range(m):
                    frame[idx[e]] += 1
        else:
            skipped += _count_checked(words, s, e_end, frame, width, height, binary)
    return skipped


@njit(cache=True, nogil=True)
def frame_until(words, t_col, start, n, frame, window_end, width, height, binary):
    """Count events start.. into one frame [2, H, W] (flat) until the first event at or past
    ``window_end``. Returns ``(index of that event, or n; events skipped)``."""
    stop = first_at_or_after(t_col, start, n, window_end)
    return stop, count_into_frame(words, start, stop, frame, width, height, binary)


@njit(cache=True, nogil=True)
def frames_from_windows(words, starts, ends, frames, width, height, binary):
    """Count events ``starts[i]:ends[i]`` into frame i of flat ``frames`` [T, 2, H, W].
    Returns the number of events skipped."""
    size = 2 * height * width
    skipped = 0
    for i in range(starts.shape[0]):
        skipped += count_into_frame(words, starts[i], ends[i], frames[i * size:(i + 1) * size],
                                    width, height, binary)
    return skipped


@njit(cache=True, nogil=True)
def frames_streaming(words, t_col, n, frames, window_end, time_window, width, height, binary):
    """Count time-ordered events into consecutive windows of ``time_window`` us.

    ``frames`` holds the open window at slot 0 followed by room for the windows this
    call completes (the caller sizes it); ``window_end`` is the end of the open window.
    Returns ``(windows completed, end of the window now open, events skipped)``, with
    skipped = -1 when an event lies past the room the caller made (times out of order).
    """
    size = 2 * height * width
    k = 0
    i = 0
    end = window_end
    skipped = 0
    while True:
        j = first_at_or_after(t_col, i, n, end)
        skipped += count_into_frame(words, i, j, frames[k * size:(k + 1) * size], width, height, binary)
        if j == n:
            break
        while t_col[j] >= end:
            k += 1
            end += time_window
        if (k + 1) * size > frames.shape[0]:  # only when times are not in order: never write past
            return k, end, -1
        i = j
    return k, end, skipped


@njit(cache=True, nogil=True)
def voxel_grid(xyp_col, t_col, n, t0, t1, n_bins, grid, width, height):
    """Bilinear-in-time voxel grid (E-RAFT, tonic's formula) into flat ``grid`` [n_bins, H, W].

    Polarity is signed (p = 0 counts -1). The left (lower-bin) weights of all events are
    added before the right ones, as tonic does, so that the float sums are bit-identical.
    Returns the number of events skipped.
    """
    hw = height * width
    W = U(width)
    H = U(height)
    span = np.float64(t1 - t0)
    scale = np.float64(n_bins)
    skipped = 0
    for side in range(2):
        for e in range(n):
            x, y, p = xyp(xyp_col[e])
            if x < W and y < H and p <= U(1):
                ts = (scale * np.float64(t_col[e] - t0)) / span if span > 0 else 0.0
                ti = np.int64(ts)
                dt = ts - ti
                pol = 1.0 if p == U(1) else -1.0
                b = ti + side
                if 0 <= b < n_bins:  # (b < 0 only where times are not sorted)
                    grid[b * hw + np.int64(y) * width + np.int64(x)] += pol * (dt if side else 1.0 - dt)
            elif side == 0:
                skipped += 1
    return skipped



@njit(cache=True, nogil=True)
def _voxel_flush(acc, grid, b, hw):
    # A time bin's sums into the grid: bin b gets sum(pol) - sum(pol * dt), bin b + 1 gets
    # sum(pol * dt); the accumulator is zeroed for the next bin.
    g0 = grid[b * hw:(b + 1) * hw]
    g1 = grid[(b + 1) * hw:(b + 2) * hw]
    for i in range(hw):
        a = acc[2 * i]
        d = acc[2 * i + 1]
        g0[i] += a - d
        g1[i] += d
        acc[2 * i] = 0.0
        acc[2 * i + 1] = 0.0


@njit(cache=True, nogil=True)
def voxel_grid_fast(xyp_col, t_col, n, t0, t1, n_bins, grid, width, height):
    """``voxel_grid`` in one pass with a multiply by the precomputed bin scale (no division)
    into a float32 ``grid`` of n_bins + 2 bins: weights that fall past the last bin land in
    the two spill bins, which the caller drops (no branch per weight). Equal to the exact
    kernel within float32 rounding. Returns the number of events skipped, or -1 when a time
    lies outside [t0, t1] or (with many events) goes back to an earlier bin (unsorted input),
    leaving ``grid`` partly filled.

    With many events (``16 * n >= n_bins * H * W``) the events of one time bin are summed
    into one interleaved accumulator of ``(sum pol, sum pol * dt)`` per pixel, moved into
    bins b and b + 1 when the bin ends: one cache line per event instead of two lines in two
    planes (two 346x260 float32 planes do not fit a 512 KiB L2; the accumulator nearly does).
    """
    hw = height * width
    W = U(width)
    H = U(height)
    scale = np.float64(n_bins) / np.float64(t1 - t0) if t1 > t0 else 0.0
    skipped = 0
    if 16 * n >= n_bins * hw:
        acc = np.zeros(2 * hw, np.float32)
        cur = -1
        for e in range(n):
            x, y, p = xyp(xyp_col[e])
            if x < W and y < H and p <= U(1):
                ts = np.float64(t_col[e] - t0) * scale
                if not (0.0 <= ts <= n_bins):
                    return -1
                ti = np.int64(ts)
                if ti != cur:
                    if ti < cur:
                        return -1
                    if cur >= 0:
                        _voxel_flush(acc, grid, cur, hw)
                    cur = ti
                dt = np.float32(ts - ti)
                pol = np.float32(2 * np.int64(p) - 1)
                q = 2 * (np.int64(y) * width + np.int64(x))
                acc[q] += pol
                acc[q + 1] += pol * dt
            else:
                skipped += 1
        if cur >= 0:
            _voxel_flush(acc, grid, cur, hw)
        return skipped
    for e in range(n):
        x, y, p = xyp(xyp_col[e])
        if x < W and y < H and p <= U(1):
            ts = np.float64(t_col[e] - t0) * scale
            if not (0.0 <= ts <= n_bins):  # only where times are not sorted: caller falls back
                return -1
            ti = np.int64(ts)
            dt = np.float32(ts - ti)
            pol = np.float32(2 * np.int64(p) - 1)
            base = ti * hw + np.int64(y) * width + np.int64(x)
            grid[base] += pol - pol * dt
            grid[base + hw] += pol * dt
        else:
            skipped += 1
    return skipped


# ---------------------------------------------------------------------------------------
# numpy references (tonic's formulas)

def frames_from_windows_reference(events, starts, ends, width, height, binary=False):
    frames = np.zeros((len(starts), 2, height, width), np.int16)
    for i, (a, b) in enumerate(zip(starts, ends)):
        ev = events[a:b]
        ok = (ev["x"] < width) & (ev["y"] < height) & ((ev["p"] == 0) | (ev["p"] == 1))
        ev = ev[ok]
        if binary:
            frames[i, ev["p"].astype(int), ev["y"].astype(int), ev["x"].astype(int)] = 1
        else:
            np.add.at(frames, (i, ev["p"].astype(int), ev["y"].astype(int), ev["x"].astype(int)), 1)
    return frames


def voxel_grid_reference(events, width, height, n_bins):
    grid = np.zeros((n_bins, height, width), np.float64).ravel()
    if len(events) == 0:
        return grid.reshape(n_bins, 1, height, width)
    t = events["t"].astype(np.float64)
    span = float(events["t"][-1] - events["t"][0])
    ts = n_bins * (t - events["t"][0]) / span if span > 0 else np.zeros(len(events))  # (n * dt) / span
    xs, ys = events["x"].astype(np.int64), events["y"].astype(np.int64)
    pols = np.where(events["p"] == 1, 1.0, -1.0)
    tis = ts.astype(np.int64)
    dts = ts - tis
    left = (tis >= 0) & (tis < n_bins)  # tis < 0 only where times are not sorted
    np.add.at(grid, xs[left] + ys[left] * width + tis[left] * width * height, (pols * (1.0 - dts))[left])
    right = (tis + 1 >= 0) & (tis + 1 < n_bins)
    np.add.at(grid, xs[right] + ys[right] * width + (tis[right] + 1) * width * height, (pols * dts)[right])
    return grid.reshape(n_bins, 1, height, width)
