"""The event word's fields (kernels/words.py) against the structured array's own fields."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit

from eventflow.events import EVENT_DTYPE
from eventflow.kernels.words import xyp, xyp_reference

from .conftest import real


@njit(cache=True)
def _all_fields(col):
    out = np.empty((3, col.shape[0]), np.uint64)
    for i in range(col.shape[0]):
        out[0, i], out[1, i], out[2, i] = xyp(col[i])
    return out


def _check(events):
    got = _all_fields(events.view(np.uint64)[0::2])
    want = np.stack(xyp_reference(events))
    np.testing.assert_array_equal(got, want)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 65535), st.integers(0, 65535), st.integers(-32768, 32767),
                          st.integers(0, 65535)), min_size=1, max_size=50))
def test_fields_equal_the_structured_fields_whatever_the_padding(rows):
    ev = np.zeros(len(rows), EVENT_DTYPE)
    ev["x"], ev["y"], ev["p"] = ([r[i] for r in rows] for i in range(3))
    raw = ev.view(np.uint8).reshape(len(rows), 16)
    raw[:, 6:8] = np.array([r[3] for r in rows], "<u2").view(np.uint8).reshape(-1, 2)   # garbage padding
    _check(ev)
    assert (_all_fields(ev.view(np.uint64)[0::2])[2][ev["p"] < 0] > 1).all()   # negative p fails p <= 1


def test_fields_of_a_real_recording():
    import eventflow

    _check(eventflow.open(real("evt3_gen41_219k.raw")).read_all())
