"""Pipeline core: cut-point independence, resume equivalence, accounting, config errors, sinks, drops.

Models here are tiny and have random weights (never shipped): a 32x32 sensor binned to 16x16,
5 ms windows, one conv-LIF block and a linear readout over 3 classes.
"""
from __future__ import annotations

import copy
import json
import os
import threading
import time

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import eventflow
from eventflow.events import concatenate
from eventflow.model import DecisionSpec, InputSpec, Model, save_model
from eventflow.pipeline import (ArraySource, AsyncRunner, CallbackSink, StreamSource, SyncRunner, build, from_dict,
                                load_config, open_sink, read_results, with_overrides)
from eventflow.pipeline.config import DEFAULT_CONFIG
from eventflow.pipeline.stage import EndOfStream
from eventflow.snn.layers import Conv2d, Flatten, Linear, MaxPool2d, Sequential
from eventflow.snn.network import Network
from eventflow.snn.neurons import LIF

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny_model(seed=0):
    spec = Sequential((("conv1", Conv2d(2, 4, 3, padding=1)), ("lif1", LIF()), ("pool1", MaxPool2d(2)),
                       ("flatten", Flatten()), ("fc", Linear(4 * 8 * 8, 3))))
    ispec = InputSpec(sensor_size=(32, 32), input_size=(16, 16), window_us=5000)
    net = Network(spec, ispec.shape, seed=seed)
    with torch.no_grad():
        net.weights["conv1"]["weight"].mul_(4)
    return Model("tiny", "classification", ("a", "b", "c"), ispec, net.eval(), DecisionSpec(3, 0.4))


def random_events(n=6000, t_end=120_000, seed=0):
    rng = np.random.default_rng(seed)
    return eventflow.from_fields(rng.integers(0, 32, n), rng.integers(0, 32, n), rng.integers(0, 2, n),
                                 np.sort(rng.integers(1000, t_end, n)))


MODEL = tiny_model()
EVENTS = random_events()


def config(**sections):
    d = {"model": {"name": "unused"}, "head": {"emit": "windows"}}
    d.update(sections)
    return from_dict(d)


def sync_runner(cfg=None, source=False, **kw):
    return SyncRunner(build(cfg or config(), model=MODEL, source=source, sinks=[], **kw))


def strip(results):
    return [{k: v for k, v in r.items() if k != "latency_ms"} for r in results]


def feed(runner, events, cuts):
    out = []
    for a, b in zip([0, *cuts], [*cuts, len(events)]):
        out += runner.step(events[a:b])
    return out + runner.finish()


WHOLE = strip(feed(sync_runner(), EVENTS, []))


def test_results_carry_the_contract_keys():
    keys = {"stream", "t_start_us", "t_end_us", "latency_ms", "task", "class_id", "class_name", "probability",
            "probabilities", "committed"}
    r = feed(sync_runner(), EVENTS, [])
    assert all(set(x) == keys for x in r)
    t0 = int(EVENTS["t"][0])
    assert [x["t_start_us"] for x in r] == list(range(t0, t0 + 5000 * len(r), 5000))  # aligned to the first event
    assert r[-1]["t_end_us"] > int(EVENTS["t"][-1])
    assert all(abs(sum(x["probabilities"]) - 1) < 1e-6 and x["task"] == "classification" for x in r)
    assert len({x["class_id"] for x in r}) > 1  # the model's output does depend on the input


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(0, len(EVENTS)), max_size=12))
def test_results_do_not_depend_on_where_the_stream_is_cut(cuts):
    assert strip(feed(sync_runner(), EVENTS, sorted(cuts))) == WHOLE


@pytest.mark.parametrize("backend", ["fast", "torch"])
def test_resume_from_saved_state_equals_an_uninterrupted_run(backend):
    cfg = config(model={"name": "unused", "backend": backend})
    whole = strip(feed(sync_runner(cfg), EVENTS, [1000, 2500]))
    first = sync_runner(cfg)
    got = first.step(EVENTS[:1000]) + first.step(EVENTS[1000:2500])
    saved = copy.deepcopy(first.get_state())
    first.step(EVENTS[2500:2600])  # the first runner goes on: the saved state must not move with it
    fresh = sync_runner(cfg)
    fresh.reset(saved)
    got += fresh.step(EVENTS[2500:]) + fresh.finish()
    assert strip(got) == whole
    assert fresh.accounting()["events_processed"] == len(EVENTS)


def test_resume_a_replay_source_mid_stream():
    cfg = config()
    a = sync_runner(cfg, source=ArraySource(EVENTS, batch_events=700))
    got = []
    a.p.sinks.append(CallbackSink(got.append))
    a.run(max_batches=4)
    state = copy.deepcopy(a.get_state())
    b = sync_runner(cfg, source=ArraySource(EVENTS, batch_events=700))
    b.p.sinks.append(CallbackSink(got.append))
    b.reset(state)
    m = b.run()
    assert strip(got) == WHOLE
    assert m["events_in"] == m["events_processed"] == len(EVENTS) and m["balanced"]


def test_accounting_counts_rejected_and_dropped_events_by_reason():
    ev = EVENTS[:3000].copy()
    ev["x"][10] = 40            # out of bounds (sensor is 32 wide)
    ev["p"][20] = 7             # not 0/1
    ev["t"][30] = 0             # before the running time
    r = sync_runner(config(source={"origin_us": int(EVENTS["t"][500])}))
    r.step(ev[:1500])
    mid = r.accounting()
    assert mid["balanced"] and mid["events_in_flight"] > 0
    r.step(ev[1500:])
    r.finish()
    acc = r.accounting()
    assert acc["rejected"] == {"out_of_bounds": 1, "bad_polarity": 1, "time_backwards": 1}
    n_before = int(np.searchsorted(ev["t"][31:], EVENTS["t"][500])) + 28  # all good events before the origin
    assert acc["dropped"] == {"before_origin": n_before}
    assert acc["events_in"] == 3000 == acc["events_processed"] + acc["events_dropped"] + acc["events_rejected"]
    assert acc["balanced"] and acc["events_in_flight"] == 0


def test_decisions_are_the_windows_where_the_committed_class_changes():
    windows = feed(sync_runner(), EVENTS, [])
    decisions = strip(feed(sync_runner(config(head={"emit": "decisions"})), EVENTS, []))
    expected, last = [], None
    for w in strip(windows):
        if w["committed"] and w["class_id"] != last:
            expected.append(w)
            last = w["class_id"]
    assert decisions == expected and 0 < len(decisions) < len(windows)


def test_config_errors_name_the_key_and_the_file(tmp_path):
    with pytest.raises(ValueError, match=r"^source\.urii: unknown key"):
        from_dict({"source": {"urii": "x"}})
    with pytest.raises(ValueError, match=r"runner\.queue_windows: expected an integer, got str 'many'"):
        from_dict({"runner": {"queue_windows": "many"}})
    with pytest.raises(ValueError, match=r"runner\.drop_policy: expected one of none, drop_oldest, latest_only"):
        from_dict({"runner": {"drop_policy": "sometimes"}})
    with pytest.raises(ValueError, match=r"source\.realtime: expected a factor > 0"):
        from_dict({"source": {"realtime": 0}})
    with pytest.raises(ValueError, match=r"sinks\[1\]: expected a sink URI \(a string\), got 1"):
        from_dict({"sinks": ["jsonl:-", 1]})
    with pytest.raises(ValueError, match=r"--set source: 'source' is a section; set one of its keys"):
        with_overrides(from_dict({}), ["source=x"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  name: x\n  threads: two\n")
    with pytest.raises(ValueError, match=rf"^{bad}: model\.threads: expected an integer or null"):
        load_config(str(bad))
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        load_config(str(tmp_path / "nope.yaml"))
    with pytest.raises(ValueError, match="unknown key 'runner.speed'"):
        with_overrides(from_dict({}), ["runner.speed=3"])
    with pytest.raises(ValueError, match=r"runner\.queue_windows: expected an integer"):
        with_overrides(from_dict({}), ["runner.queue_windows=lots"])
    cfg = with_overrides(from_dict({}), ["runner.queue_windows=3", "source.uri=sim:gesture?seed=2", "sinks=[jsonl:-]"])
    assert (cfg.runner.queue_windows, cfg.source.uri, cfg.sinks) == (3, "sim:gesture?seed=2", ("jsonl:-",))
    # string keys are taken as typed (stripped), never parsed as YAML: '@x' and '[a' are not YAML
    cfg = with_overrides(from_dict({}), ["source.uri= @recordings/a [1].raw ", "model.name=[a"])
    assert (cfg.source.uri, cfg.model.name) == ("@recordings/a [1].raw", "[a")
    with pytest.raises(FileNotFoundError, match="no model"):
        build(config(model={"name": str(tmp_path / "missing")}), sinks=[])
    with pytest.raises(ValueError, match="unknown scheme 'ftp:'"):
        build(config(source={"uri": "ftp://x/y"}), model=MODEL, sinks=[])
    with pytest.raises(ValueError, match="sink 'csv:out': unknown kind"):
        open_sink("csv:out")


def test_shipped_configs_are_valid_and_default_yaml_is_the_embedded_default():
    import yaml

    for name in ("default.yaml", "replay.yaml", "live_zmq.yaml"):
        load_config(os.path.join(ROOT, "configs", name))
    with open(os.path.join(ROOT, "configs", "default.yaml"), encoding="utf-8") as f:
        assert yaml.safe_load(f) == DEFAULT_CONFIG


def test_jsonl_and_hdf5_sinks_round_trip(tmp_path):
    folder = save_model(str(tmp_path / "tiny"), MODEL)
    cfg = from_dict({"model": {"name": folder}, "head": {"emit": "windows"},
                     "sinks": [f"jsonl:{tmp_path / 'r.jsonl'}", f"hdf5:{tmp_path / 'r.h5'}"]})
    got = []
    p = build(cfg, source=ArraySource(EVENTS, batch_events=1000), callback=got.append)
    SyncRunner(p).run()
    p.shutdown()
    with open(tmp_path / "r.jsonl", encoding="utf-8") as f:
        lines = [json.loads(x) for x in f]
    assert lines == got and strip(got) == WHOLE
    back = read_results(str(tmp_path / "r.h5"))
    assert strip(back) == [{**r, "probabilities": pytest.approx(r["probabilities"], abs=1e-6),
                            "probability": pytest.approx(r["probability"], abs=1e-6)} for r in strip(got)]
    assert [b["latency_ms"] for b in back] == pytest.approx([g["latency_ms"] for g in got])


def test_file_source_replays_a_file_and_counts_its_events(tmp_path):
    path = str(tmp_path / "ev.hdf5")
    eventflow.write_events(path, EVENTS, width=32, height=32)
    got = []
    p = build(config(source={"uri": f"file:{path}", "chunk_events": 999}), model=MODEL, sinks=[],
              callback=got.append)
    m = SyncRunner(p).run()
    assert strip(got) == WHOLE and m["events_in"] == len(EVENTS) and m["balanced"]


def test_unpaced_file_replay_gathers_the_readers_small_chunks(tmp_path):
    from eventflow.pipeline import FileSource

    path = str(tmp_path / "ev.hdf5")
    eventflow.write_events(path, EVENTS, width=32, height=32, chunk_length=500)   # HDF5 chunks of 500 events
    src = FileSource(path, chunk_events=2048)
    sizes, got = [], []
    try:
        while True:
            b = src.next()
            sizes.append(len(b.events))
            got.append(b.events)
    except EndOfStream:
        pass
    assert max(sizes) <= 2048 and sum(sizes) == len(EVENTS) and len(sizes) <= -(-len(EVENTS) // 1500)
    assert np.array_equal(concatenate(got), EVENTS)
    slow = EVENTS.copy()
    slow["t"] = np.sort(np.random.default_rng(1).integers(0, 9_000_000, len(slow)))   # 9 s of sensor time
    eventflow.write_events(path, slow, width=32, height=32, chunk_length=500)
    src, spans = FileSource(path), []
    try:
        while True:
            b = src.next().events
            spans.append(int(b["t"][-1]) - int(b["t"][0]))
    except EndOfStream:
        pass
    assert 4 <= len(spans) <= 5 and all(s >= 2_000_000 - 10_000 for s in spans[:-1])   # about two seconds each


def test_a_reader_failing_mid_file_still_delivers_what_it_read_before(tmp_path):
    from eventflow.pipeline import FileSource

    path = str(tmp_path / "ev.hdf5")
    eventflow.write_events(path, EVENTS, width=32, height=32, chunk_length=500)
    src = FileSource(path)

    def failing():
        yield EVENTS[:500]
        yield EVENTS[500:1000]
        raise ValueError("ev.hdf5: corrupt chunk at byte 1234")
    src.reader = type("R", (), {"__iter__": lambda self: failing(), "width": 32, "height": 32,
                                "violations": None})()
    src.reset()
    assert np.array_equal(src.next().events, EVENTS[:1000])
    with pytest.raises(ValueError, match="corrupt chunk"):
        src.next()


def test_warm_up_loads_the_kernel_a_model_step_runs(monkeypatch):
    from eventflow.kernels import snn as K

    calls = []
    run = K.network_run
    monkeypatch.setattr(K, "network_run", lambda *a: calls.append(1) or run(*a))
    p = build(config(), model=MODEL, source=False, sinks=[])
    p.model.warm_up()
    assert calls and p.model.backend == "fast"


def test_stdin_source_keeps_records_split_across_reads():
    r, w = os.pipe()
    data = EVENTS[:500].tobytes()

    def writer():
        for a in range(0, len(data), 37):   # 37-byte writes: records cut everywhere
            os.write(w, data[a:a + 37])
        os.write(w, b"\x01\x02\x03")        # a truncated last record
        os.close(w)

    th = threading.Thread(target=writer)
    th.start()
    src = StreamSource(os.fdopen(r, "rb", buffering=0), read_bytes=50)
    parts = []
    while True:
        try:
            b = src.next(timeout_s=5)
        except EndOfStream:
            break
        if b is not None:
            parts.append(b.events)
    th.join()
    assert eventflow.events.concatenate(parts).tobytes() == data
    assert src.counters() == {"received": 501, "rejected": {"truncated_record": 1}, "dropped": {}}


@pytest.mark.parametrize("window_thread", [True, False])
def test_async_lossless_equals_sync(window_thread):
    got = []
    p = build(config(runner={"queue_windows": 1, "queue_batches": 1}), model=MODEL, sinks=[],
              source=ArraySource(EVENTS, batch_events=300), callback=got.append)
    m = AsyncRunner(p, "none", 1, 1, window_thread=window_thread).run()
    assert strip(got) == WHOLE and m["events_dropped"] == 0 and m["balanced"]


@pytest.mark.parametrize("policy", ["drop_oldest", "latest_only"])
def test_slow_consumer_with_a_drop_policy_counts_the_dropped_events(policy):
    got = []

    def slow(result):
        got.append(result)
        time.sleep(0.01)

    p = build(config(), model=MODEL, sinks=[], source=ArraySource(EVENTS, batch_events=100), callback=slow)
    m = AsyncRunner(p, policy, queue_batches=4, queue_windows=1).run()
    assert m["dropped"].get(policy, 0) > 0 and m["balanced"]
    assert m["events_in"] == len(EVENTS) == m["events_processed"] + m["events_dropped"]
    assert len(got) < len(WHOLE)
    assert all(g["t_start_us"] < h["t_start_us"] for g, h in zip(got, got[1:]))  # still in time order


@settings(max_examples=80, deadline=None)
@given(seed=st.integers(0, 1000), steps=st.integers(1, 12), n=st.integers(1, 40), cut=st.integers(0, 40),
       background=st.sampled_from([None, 0]), hold=st.sampled_from([None, (0.8, 0.3), (0.5, 0.0), (1.0, 0.5), (0.5, 0.3), (None, 0.35)]))
def test_decision_run_over_all_windows_at_once_equals_step_by_step(seed, steps, n, cut, background, hold):
    rng = np.random.default_rng(seed)
    logits = (rng.standard_normal((n, 4)) * 3).astype(np.float32)
    d = DecisionSpec(steps, 0.5, background) if hold is None else DecisionSpec(steps, 0.5, background, *hold)
    state, probs, committed, decided = d.init_state(4), [], [], []
    for row in logits:
        before = state
        p, c, state = d.step(row[None], state)
        probs.append(p[0])
        committed.append(int(c[0]))
        # a decision: the class changed, or (with the hold) the stream committed again after a release
        decided.append(bool(c[0] != before.committed[0] or (before.released[0] and not state.released[0])))
    cut = min(cut, n)   # in two calls, the state carried between them
    p1, c1, mid = d.run(logits[:cut], d.init_state(4))
    p2, c2, end = d.run(logits[cut:], mid)
    np.testing.assert_array_equal(np.concatenate([p1, p2]), np.array(probs))
    assert np.concatenate([c1, c2]).tolist() == committed
    mid = d.replay(logits[:cut], d.init_state(4))
    assert np.concatenate([mid[3], d.replay(logits[cut:], mid[4])[3]]).tolist() == decided
    for a, b in zip(end, state):
        np.testing.assert_array_equal(a, b)


def test_warm_up_leaves_the_stream_state_alone():
    r = sync_runner()
    got = r.step(EVENTS[:2000])
    before = copy.deepcopy(r.get_state())
    r.warm_up()
    after = r.get_state()
    assert before.keys() == after.keys()
    for name in before:
        for key, value in before[name].items():
            np.testing.assert_equal(after[name][key], value)
    assert strip(got + r.step(EVENTS[2000:]) + r.finish()) == WHOLE


def test_file_source_leaves_bounds_to_the_window_stage_which_counts_them(tmp_path):
    ev = EVENTS.copy()
    ev["x"][[5, 900]] = 40                   # outside the 32-wide sensor
    path = str(tmp_path / "ev.npy")
    eventflow.write_events(path, ev)         # no geometry in the file: the pipeline gives 32x32
    reader = eventflow.open(path, width=32, height=32, check_bounds=False)
    assert len(reader.read_all()) == len(ev) and not reader.violations.counts   # the reader's option
    p = build(config(source={"uri": path, "width": 32, "height": 32}), model=MODEL, sinks=[])
    m = SyncRunner(p).run()
    assert m["rejected"] == {"out_of_bounds": 2} and m["events_in"] == len(ev) and m["balanced"]
    assert m["events_processed"] == len(ev) - 2


def test_async_runner_imports_either_way_and_reports_each_threads_cpu_time():
    import subprocess
    import sys

    for first, second in (("runner_async", "runner"), ("runner", "runner_async")):
        code = (f"import eventflow.pipeline.{first}, eventflow.pipeline.{second}, eventflow.pipeline as p; "
                "assert p.AsyncRunner is p.runner_async.AsyncRunner")
        subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    p = build(config(), model=MODEL, sinks=[], source=ArraySource(EVENTS, batch_events=500))
    m = AsyncRunner(p, "none").run()
    assert set(m["thread_cpu_s"]) == {"source", "window", "model"} and m["balanced"]
    assert m["thread_cpu_s"]["model"] > 0 and m["thread_cpu_s"]["source"] > 0   # each thread did work


def test_prometheus_endpoint_serves_the_runs_counters_over_http():
    import urllib.error
    import urllib.request

    from eventflow.pipeline.metrics import serve_prometheus

    p = build(config(), model=MODEL, sinks=[], source=ArraySource(EVENTS, batch_events=500))
    runner = SyncRunner(p)
    m = runner.run()
    server = serve_prometheus(0, runner.metrics)       # port 0: the OS picks a free one
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        with urllib.request.urlopen(url + "/metrics", timeout=10) as r:
            assert r.headers["Content-Type"].startswith("text/plain")
            text = r.read().decode()
        lines = dict(line.rsplit(" ", 1) for line in text.splitlines() if not line.startswith("#"))
        assert int(lines["eventflow_events_in"]) == m["events_in"] == len(EVENTS)
        assert int(lines["eventflow_windows"]) == m["windows"] > 0
        assert float(lines['eventflow_stage_ms{stage="model",quantile="0.99"}']) > 0
        with pytest.raises(urllib.error.HTTPError, match="404"):
            urllib.request.urlopen(url + "/other", timeout=10)
    finally:
        server.shutdown()


def test_paced_file_replay_cuts_batches_by_time_and_shortens_a_clock_jump(tmp_path, monkeypatch):
    """Paced replay cuts a chunk where its batch_us slot changes (so a file whose clock jumps by
    10**17 us allocates nothing by that span) and does not sleep out the jump."""
    from eventflow.pipeline.sources import FileSource, _Pacer

    monkeypatch.setattr(_Pacer, "MAX_WAIT_S", 0.05)
    t = np.array([0, 10, 999, 1000, 2500, 10**17, 10**17 + 5])
    path = tmp_path / "jump.npz"
    eventflow.write(path, eventflow.from_fields(np.zeros(7), np.zeros(7), np.ones(7), t), width=4, height=4)
    src = FileSource(str(path), realtime=1.0, batch_us=1000)
    start, batches = time.monotonic(), []
    while True:
        try:
            batches.append(src.next().events["t"].tolist())
        except EndOfStream:
            break
    assert batches == [[0, 10, 999], [1000], [2500], [10**17, 10**17 + 5]]
    assert src._pacer.gaps_shortened == 1 and time.monotonic() - start < 5


def test_file_source_counts_events_the_reader_dropped_as_rejected_and_reports_every_violation(tmp_path):
    """received = delivered + dropped by the reader; kinds that keep the event (a TIME_LOW going
    back) or count words are reported under violations, not as rejected events."""
    from eventflow.pipeline.sources import FileSource

    words = [0x8000, 0x3000, 0x4FFF,   # TIME_HIGH, VECT_BASE_X, VECT_12 of 12 events before any ADDR_Y: dropped
             0x0005, 0x6002, 0x2001,   # ADDR_Y 5, TIME_LOW 2, ADDR_X 1: kept
             0x6001, 0x2002]           # TIME_LOW 1 (goes back: counted, kept), ADDR_X 2: kept
    path = tmp_path / "v.raw"
    path.write_bytes(b"% evt 3.0\n% geometry 64x48\n% end\n" + np.array(words, "<u2").tobytes())
    src = FileSource(str(path))
    delivered = 0
    while True:
        try:
            delivered += len(src.next().events)
        except EndOfStream:
            break
    c = src.counters()
    assert delivered == 2 and c["received"] == 14 and c["rejected"] == {"missing_addr_y": 12}
    assert c["violations"] == {"missing_addr_y": 12, "time_low_decrease": 1}


def test_an_origin_far_before_the_first_event_is_refused_not_filled_with_empty_windows():
    from eventflow.pipeline.stages import WindowStage

    spec = InputSpec(sensor_size=(32, 32), input_size=(16, 16), window_us=5000)
    ev = eventflow.from_fields([1, 2], [1, 2], [0, 1], [100, 200])
    with pytest.raises(ValueError, match=r"source\.origin_us: the first event \(t=100 us\) comes 2000000 windows after"):
        list(WindowStage(spec, origin_us=-10**10).step(ev, 0))
    out = list(WindowStage(spec, origin_us=-10**6).step(ev, 0))   # 200 empty windows first: fine
    assert sum(len(w) for w in out) == 200 and sum(w.n_events.sum() for w in out) == 0
    assert max(len(w) for w in out) <= WindowStage.CAPACITY    # in chunks, as they are binned


def test_a_clock_jump_restarts_the_stream_instead_of_stepping_every_empty_window():
    """A day's jump in sensor time, then the stream goes on: nothing is lost, the day's windows
    are skipped and counted, the stream after the jump gives the results the same events give
    from rest (model and head restarted), the accounting balances, and cut anywhere the results
    are the same. A lone corrupt timestamp only costs its own event."""
    day = 86_400 * 10**6
    a, b = EVENTS[:3000], EVENTS[3000:].copy()
    b["t"] += day
    ev = np.concatenate([a, b]).astype(EVENTS.dtype)
    got = None
    for cuts in ([], [3000], [3001], [1000, 3002, 5000]):
        r = sync_runner()
        res = strip(feed(r, ev, cuts))
        m = r.metrics()
        assert m["rejected"] == {} and m["balanced"] and m["events_processed"] == len(ev)
        assert m["clock_jumps"]["jumps"] == 1 and m["clock_jumps"]["skipped_windows"] > 17_000_000
        assert m["windows"] < 50
        got = res if got is None else got
        assert res == got
    for window_thread in (True, False):    # the async runner, lossless: the same results
        out = []
        p = build(config(runner={"queue_windows": 1, "queue_batches": 1}), model=MODEL, sinks=[],
                  source=ArraySource(ev, batch_events=700), callback=out.append)
        m = AsyncRunner(p, "none", 1, 1, window_thread=window_thread).run()
        assert strip(out) == got and m["balanced"] and m["clock_jumps"]["jumps"] == 1
    after = [x for x in got if x["t_start_us"] >= int(b["t"][0])]
    fresh = strip(feed(sync_runner(), b, []))               # the same events from rest
    assert [x["probabilities"] for x in after] == [x["probabilities"] for x in fresh]
    # a lone timestamp 2**40 us ahead: rejected, the clock stays
    odd = EVENTS.copy()
    odd["t"][2000] = 2**40
    r = sync_runner()
    res = strip(feed(r, odd, []))
    m = r.metrics()
    assert m["rejected"] == {"time_jump": 1} and m["clock_jumps"] == {"jumps": 0, "skipped_windows": 0}
    assert len(res) == len(WHOLE) and m["balanced"]
    assert strip(feed(sync_runner(), np.delete(odd, 2000).astype(EVENTS.dtype), [])) == res


def test_a_failing_sink_counts_its_windows_and_a_dropped_jump_chunk_still_restarts():
    """A sink that raises: the windows it failed on are counted (dropped, ``failed``), the rest
    of the batch is counted as abandoned, and the accounting balances. Async, dropping the
    oldest windows across a clock jump: the model still restarts after it (window epochs)."""
    calls = []

    def bad_sink(result):
        calls.append(result)
        if len(calls) == 3:
            raise RuntimeError("sink down")
    r = SyncRunner(build(config(), model=MODEL, sinks=[], source=False, callback=bad_sink))
    with pytest.raises(RuntimeError, match="sink down"):
        r.step(EVENTS)
    m = r.metrics()
    assert m["dropped"]["failed"] > 0 and m["balanced"]
    assert m["events_processed"] + m["events_dropped"] + m["events_in_flight"] == len(EVENTS)
    # async with drops across a jump: every result after the jump equals a fresh run's
    day = 86_400 * 10**6
    b = EVENTS[3000:].copy()
    b["t"] += day
    ev = np.concatenate([EVENTS[:3000], b]).astype(EVENTS.dtype)
    seen = []

    def slow(result):
        seen.append(result["t_start_us"])
        time.sleep(0.002)
    p = build(config(), model=MODEL, sinks=[], source=ArraySource(ev, batch_events=100), callback=slow)
    reset = p.model.reset
    p.model.reset = lambda state=None: (seen.append("reset"), reset(state))
    m = AsyncRunner(p, "drop_oldest", queue_batches=2, queue_windows=1).run()
    assert m["balanced"] and m["clock_jumps"]["jumps"] == 1 and m["dropped"].get("drop_oldest", 0) > 0
    at = seen.index("reset")
    assert seen.count("reset") == 1 and 0 < at < len(seen) - 1
    assert all(t < int(b["t"][0]) for t in seen[:at]) and all(t >= int(b["t"][0]) for t in seen[at + 1:])


def test_max_gap_config_key():
    with pytest.raises(ValueError, match="source.max_gap_us"):
        sync_runner(config(source={"max_gap_us": 0}))
    assert from_dict({"source": {"max_gap_us": None}}).source.max_gap_us is None
    r = sync_runner(config(source={"max_gap_us": None}))
    ev = EVENTS[:100].copy()
    ev["t"][50:] += 10**6        # a second's gap: 200 windows of 5 ms, all stepped without a limit
    feed(r, ev, [])
    assert r.metrics()["windows"] > 200 and "time_jump" not in r.metrics()["rejected"]
    with pytest.raises(ValueError, match="source.max_gap_us"):
        sync_runner(config(source={"max_gap_us": 1000}))      # less than one 5 ms window


def test_metrics_show_messages_a_source_rejected_whole(monkeypatch):
    """A network source counts messages it could not decode at all (no event count to give):
    the run's metrics show them by reason."""
    src = ArraySource(EVENTS, batch_events=1000)
    plain = src.counters

    def counters():
        c = dict(plain())
        c["rejected_messages"] = {"bad_packet": 2}
        return c
    monkeypatch.setattr(src, "counters", counters)
    m = SyncRunner(build(config(), model=MODEL, sinks=[], source=src)).run()
    assert m["rejected_messages"] == {"bad_packet": 2} and m["balanced"]


HELD = {"switch_probability": 0.6, "release_probability": 0.34}   # the tiny model commits at 0.4 (3 classes; its top
# probabilities run 0.34-0.43, so 0.6 holds a committed class until a window falls below 0.34)


@settings(max_examples=10, deadline=None)
@given(st.lists(st.integers(0, len(EVENTS)), max_size=8))
def test_a_held_decision_rule_from_the_config_is_cut_independent_and_holds(cuts):
    held = config(head={"emit": "windows", **HELD})
    windows = strip(feed(sync_runner(held), EVENTS, []))
    assert strip(feed(sync_runner(held), EVENTS, sorted(cuts))) == windows
    decisions = strip(feed(sync_runner(config(head={"emit": "decisions", **HELD})), EVENTS, sorted(cuts)))
    assert decisions == strip(feed(sync_runner(config(head={"emit": "decisions", **HELD})), EVENTS, []))
    plain = strip(feed(sync_runner(config(head={"emit": "decisions"})), EVENTS, []))
    assert decisions and decisions != plain   # (the override reaches the head, and changes what it says)
    # each decision after the first came at the switch probability, or after the output fell below the release one
    at = {w["t_start_us"]: i for i, w in enumerate(windows)}
    for prev, d in zip(decisions, decisions[1:]):
        between = windows[at[prev["t_start_us"]] + 1:at[d["t_start_us"]]]
        assert d["probability"] >= 0.6 or any(w["probability"] < 0.34 for w in between)


def test_a_head_state_saved_before_the_release_was_tracked_resumes_holding_its_class():
    cfg = config(head={"emit": "windows", **HELD})
    whole = strip(feed(sync_runner(cfg), EVENTS, []))
    first = sync_runner(cfg)
    got = first.step(EVENTS[:1500])
    saved = copy.deepcopy(first.get_state())
    assert saved["head"]["released"].dtype == bool
    fresh = sync_runner(cfg)
    fresh.reset(saved)
    assert strip(got + fresh.step(EVENTS[1500:]) + fresh.finish()) == whole
    # a state from before the release was tracked: a committed stream resumes holding its class and
    # says what an uninterrupted run says (its next commit of that class is not told again)
    decided = config(head={"emit": "decisions", **HELD})
    told = strip(feed(sync_runner(decided), EVENTS, []))
    for cut in range(500, len(EVENTS), 500):
        first = sync_runner(decided)
        got = first.step(EVENTS[:cut])
        old = copy.deepcopy(first.get_state())
        del old["head"]["released"]
        again = sync_runner(decided)
        again.reset(old)
        assert bool(again.p.head.state.released[0]) == (old["head"]["committed"][0] < 0)
        assert strip(got + again.step(EVENTS[cut:]) + again.finish()) == told, cut


def test_head_overrides_of_the_commit_probability_work_beside_a_models_hold():
    import dataclasses

    held = dataclasses.replace(MODEL, decision=DecisionSpec(3, 0.4, None, 0.6, 0.34))
    for cp in (0.7, 0.2):   # above the model's switch probability (no hold then), below its release one
        cfg = config(head={"commit_probability": cp})
        r = SyncRunner(build(cfg, model=held, source=False, sinks=[]))
        assert r.p.head.decision.commit_probability == cp
        assert r.p.head.decision.holds == (cp < 0.6)
    with pytest.raises(ValueError, match=r"head\.release_probability: expected a probability in \[0, 1\], got 2"):
        config(head={"release_probability": 2})
