"""The trained models that ship with eventflow, one folder each (model.json, weights, card).

This folder is installed as ``eventflow.models``; ``eventflow.model.load_model(NAME)`` finds a
shipped model here by its folder name.
"""
import os

MODELS_DIR = os.path.dirname(os.path.abspath(__file__))
