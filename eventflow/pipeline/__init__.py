"""Streaming pipeline: sources -> decode -> window/encode -> model step -> head -> sinks.

A description (``PipelineConfig``, from YAML or ``DEFAULT_CONFIG``) is built into a running
``Pipeline`` (``build``) and driven by a ``SyncRunner`` (deterministic replay, ``step(events)``
for control loops) or an ``AsyncRunner`` (threads, bounded queues, drop policies for live
sources). See ``eventflow run --help`` for the command line.

>>> from eventflow.pipeline import from_dict, build, SyncRunner   # doctest: +SKIP
>>> runner = SyncRunner(build(from_dict({"model": {"name": "my-model"}}), source=False))  # doctest: +SKIP
>>> results = runner.step(events)                                 # doctest: +SKIP
"""
from .config import (DEFAULT_CONFIG, HeadConfig, ModelConfig, PipelineConfig, RunnerConfig, SourceConfig, from_dict,
                     load_config, with_overrides)
from .runner import AsyncRunner, Pipeline, SyncRunner, build, make_runner
from .sinks import CallbackSink, Hdf5Sink, JsonlSink, open_sink, read_results
from .sources import ArraySource, FileSource, SimSource, StreamSource, open_source
from .stage import Batch, EndOfStream, Sink, Source

__all__ = ["DEFAULT_CONFIG", "ArraySource", "AsyncRunner", "Batch", "CallbackSink", "EndOfStream", "FileSource",
           "Hdf5Sink", "HeadConfig", "JsonlSink", "ModelConfig", "Pipeline", "PipelineConfig", "RunnerConfig",
           "SimSource", "Sink", "Source", "SourceConfig", "StreamSource", "SyncRunner", "build", "from_dict",
           "load_config", "make_runner", "open_sink", "open_source", "read_results", "with_overrides"]
