"""Spike-tensor encoders: events in, tensors shaped [T, C, H, W] out.

Functional forms take ``(events, sensor_size=(W, H), ...)`` and return numpy arrays;
streaming forms are frozen dataclasses with ``step(events, state) -> (out, state)`` and
``finish(state)``, so that a stream encoded whole equals the stream encoded cut anywhere.
"""
from .frames import FrameEncoder, FrameEncoderState, to_frames, to_voxel_grid
from .slicing import TimeSlicer, TimeSlicerState, count_windows, time_bin_windows, time_windows

__all__ = ["FrameEncoder", "FrameEncoderState", "TimeSlicer", "TimeSlicerState", "count_windows",
           "time_bin_windows", "time_windows", "to_frames", "to_voxel_grid"]
