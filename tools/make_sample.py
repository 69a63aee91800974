"""Write the bundled sample recording: eventflow/data/sample_gesture.hdf5 (+ _labels.csv).

A simulated DVS128 recording (eventflow's simulator, gesture scene) of one subject performing
three gestures one after the other, with the scene's default sensor settings; the labels
beside it in DVS128 Gesture's CSV format. It is what `eventflow info --sample` reads and what
the default `eventflow run` replays through the shipped gesture model. The seed (7001) is not
one of the training, validation or test splits' sample seeds.

usage: python tools/make_sample.py [--out eventflow/data/sample_gesture.hdf5] [--seed 7001]
"""
from __future__ import annotations

import argparse
import os

import eventflow
from eventflow.sim.scenes import make_scene
from eventflow.sim.simulator import scene_sensor, simulate

GESTURES = (2, 4, 9)   # right hand wave, right arm clockwise, air drums


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "eventflow", "data",
                                                  "sample_gesture.hdf5"))
    ap.add_argument("--seed", type=int, default=7001)
    a = ap.parse_args()
    sensor = scene_sensor("gesture")
    scene = make_scene("gesture", sensor.width, sensor.height, a.seed, gestures=GESTURES)
    events = simulate(scene, sensor, seed=a.seed)
    eventflow.write(a.out, events, width=sensor.width, height=sensor.height)
    stem = os.path.splitext(a.out)[0]
    written = scene.save_ground_truth(stem)
    print(f"wrote {len(events):,} events over {scene.duration_s:.1f} s to {a.out}; labels: {written}")


if __name__ == "__main__":
    main()
