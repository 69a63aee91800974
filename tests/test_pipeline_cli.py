"""`eventflow run` as a user runs it: real subprocesses, real pipes, real signals."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

import eventflow
from eventflow.model import save_model

from .test_pipeline import EVENTS, MODEL, WHOLE, strip

ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def eventflow_run(*args, **kw):
    return [sys.executable, "-m", "eventflow", "run", *args]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_model(str(tmp_path_factory.mktemp("m") / "tiny"), MODEL)


def test_stdin_source_through_a_pipe(model_dir):
    p = subprocess.run(eventflow_run("--source", "-", "--model", model_dir, "--emit", "windows", "--metrics"),
                       input=EVENTS.tobytes() + b"\x00" * 5, capture_output=True, env=ENV, timeout=120)
    assert p.returncode == 0, p.stderr.decode()
    lines = [json.loads(x) for x in p.stdout.decode().splitlines()]
    metrics = lines.pop()
    assert strip(lines) == WHOLE
    assert metrics["events_in"] == len(EVENTS) + 1 and metrics["rejected"] == {"truncated_record": 1}
    assert metrics["events_processed"] == len(EVENTS) and metrics["balanced"]
    assert {"p50", "p99"} <= set(metrics["latency_ms"]) and {"decode", "window", "model", "head"} <= set(
        metrics["stages"])
    assert "eventflow run:" in p.stderr.decode()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_ends_a_paced_run_cleanly(model_dir, tmp_path, signum):
    path = str(tmp_path / "ev.hdf5")
    eventflow.write_events(path, EVENTS, width=32, height=32)
    out = tmp_path / "r.jsonl"
    proc = subprocess.Popen(eventflow_run("--source", path, "--model", model_dir, "--realtime", "0.05",
                                          "--emit", "windows", "--metrics", "--sink", f"jsonl:{out}",
                                          "--sink", "jsonl:-"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
    first = proc.stdout.readline()          # a result: the pipeline is running
    assert json.loads(first)["task"] == "classification"
    proc.send_signal(signum)
    rest, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()
    lines = [first.decode()] + rest.decode().splitlines()
    metrics = json.loads(lines[-1])
    assert metrics["interrupted"] and metrics["balanced"] and 0 < metrics["events_in"] < len(EVENTS)
    assert metrics["events_in"] == metrics["events_processed"] + metrics["events_dropped"]
    with open(out, encoding="utf-8") as f:   # the file sink was flushed and closed: every result is there
        assert [json.loads(x) for x in f] == [json.loads(x) for x in lines[:-1]]
    assert "interrupted" in err.decode() and "eventflow run:" in err.decode()


def test_bad_input_exits_2_with_one_line(model_dir, capsys):
    from eventflow.cli import main

    assert main(["run", "--model", model_dir, "--set", "runner.queue=3"]) == 2
    assert capsys.readouterr().err.strip() == "eventflow: error: --set runner.queue: unknown key 'runner.queue'"
    assert main(["run", "--model", model_dir, "--source", "/nonexistent/x.hdf5"]) == 2
    assert capsys.readouterr().err.strip() == "eventflow: error: source: no such file '/nonexistent/x.hdf5'"


@pytest.mark.parametrize("args, message", [
    (["--source", "sim:gesture?seconds=-1"], "source sim:gesture: seconds must be a finite number > 0 (at least 1 us), got -1.0"),
    (["--source", "sim:gesture?seconds=nan"], "source sim:gesture: seconds must be a finite number > 0 (at least 1 us), got nan"),
    (["--set", "model.threads=0"], "model.threads: expected 1.."),
    (["--source", "sample", "--set", "source.options={hwm: 3}"],
     "source 'sample': source.options (hwm) are for live sources"),
])
def test_out_of_range_run_settings_are_one_line_errors(model_dir, capsys, args, message):
    from eventflow.cli import main

    assert main(["run", "--model", model_dir, *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_eval_and_train_refuse_counts_below_one(capsys):
    from eventflow.cli import main

    from eventflow.train.data import Limited

    with pytest.raises(ValueError, match="limit: expected at least 1 recording, got -1"):   # eval --limit, data.*.limit
        Limited([1, 2, 3], -1)
    config = os.path.join(os.path.dirname(__file__), "..", "configs", "gesture-snn.yaml")
    assert main(["train", config, "--epochs", "0"]) == 2
    assert "optim.epochs: expected at least 1, got 0" in capsys.readouterr().err


def test_default_run_prints_decisions():
    from eventflow.model import list_models

    try:
        shipped = list_models()
    except (ImportError, FileNotFoundError):
        shipped = []
    if "gesture-snn" not in shipped:
        pytest.skip("the shipped model gesture-snn does not exist yet (classification issue)")
    t = time.monotonic()
    p = subprocess.run([sys.executable, "-m", "eventflow", "run", "--metrics"], capture_output=True, env=ENV,
                       timeout=300)
    assert p.returncode == 0, p.stderr.decode()
    lines = [json.loads(x) for x in p.stdout.decode().splitlines()]
    metrics = lines.pop()
    assert lines and all(r["committed"] and r["task"] == "classification" for r in lines)
    assert metrics["balanced"] and metrics["events_processed"] > 0, time.monotonic() - t
