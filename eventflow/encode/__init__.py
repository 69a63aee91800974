"""Spike-tensor encoders: events in, tensors shaped [T, C, H, W] out.

Functional forms take ``(events, sensor_size=(W, H), ...)`` and return numpy arrays;
streaming forms are frozen dataclasses with ``init_state()``, ``step(events, state) ->
(out, state)`` and ``finish(state)`` (and pure ``*_step`` functions), so that a stream
encoded whole equals the stream encoded cut anywhere.
"""
from .filters import (Crop, Denoise, DenoiseState, Downsample, Refractory, RefractoryState, crop, denoise,
                      denoise_step, downsample, init_denoise_state, init_refractory_state, refractory,
                      refractory_step)
from .frames import FrameEncoder, FrameEncoderState, WindowEncoder, to_frames, to_voxel_grid
from .hybrid import HybridCoding, HybridState, hybrid_finish, hybrid_step, init_hybrid_state, to_hybrid
from .slicing import (CountSlicer, CountSlicerState, TimeSlicer, TimeSlicerState, count_windows, time_bin_windows,
                      time_windows)
from .surface import (TimeSurface, TimeSurfaceState, init_time_surface_state, time_surface_finish,
                      time_surface_step, to_time_surface)

__all__ = [
    "CountSlicer", "CountSlicerState", "WindowEncoder", "Crop", "Denoise", "DenoiseState", "Downsample", "FrameEncoder", "FrameEncoderState", "HybridCoding",
    "HybridState", "Refractory", "RefractoryState", "TimeSlicer", "TimeSlicerState", "TimeSurface",
    "TimeSurfaceState", "count_windows", "crop", "denoise", "denoise_step", "downsample", "hybrid_finish",
    "hybrid_step", "init_denoise_state", "init_hybrid_state", "init_refractory_state",
    "init_time_surface_state", "refractory", "refractory_step", "time_bin_windows", "time_surface_finish",
    "time_surface_step", "time_windows", "to_frames", "to_hybrid", "to_time_surface", "to_voxel_grid",
]
