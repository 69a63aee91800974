"""Streaming pipeline: sources -> decode -> window/encode -> model step -> head -> sinks.

A description (``PipelineConfig``, from YAML or ``DEFAULT_CONFIG``) is built into a running
``Pipeline`` (``build``) and driven by a ``SyncRunner`` (deterministic replay, ``step(events)``
for control loops) or an ``AsyncRunner`` (threads, bounded queues, drop policies for live
sources). See ``eventflow run --help`` for the command line.

>>> from eventflow.pipeline import from_dict, build, SyncRunner   # doctest: +SKIP
>>> runner = SyncRunner(build(from_dict({"model": {"name": "my-model"}}), source=False))  # doctest: +SKIP
>>> results = runner.step(events)                                 # doctest: +SKIP
"""
import importlib

# Names load on first use (PEP 562), so that `eventflow send` and the network stages start
# without importing torch and numba through the runner.
_EXPORTS = {
    "config": ("DEFAULT_CONFIG", "HeadConfig", "ModelConfig", "PipelineConfig", "RunnerConfig", "SourceConfig",
               "from_dict", "load_config", "with_overrides"),
    "runner": ("Pipeline", "SyncRunner", "build", "make_runner"),
    "runner_async": ("AsyncRunner",),
    "sinks": ("CallbackSink", "Hdf5Sink", "JsonlSink", "open_sink", "read_flow", "read_results"),
    "sources": ("ArraySource", "FileSource", "SimSource", "StreamSource", "open_source"),
    "stage": ("Batch", "EndOfStream", "Sink", "Source"),
}
_WHERE = {name: mod for mod, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name):
    mod = _WHERE.get(name)
    if mod is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{mod}"), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
