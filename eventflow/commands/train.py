"""``eventflow train CONFIG`` and ``eventflow eval MODEL DATA``."""
from __future__ import annotations

import json
import os
import sys
from dataclasses import replace


def cmd_train(a) -> int:
    from ..train.config import load_config
    from ..train.session import train

    cfg = load_config(a.config)
    if a.epochs is not None:
        cfg = replace(cfg, optim=replace(cfg.optim, epochs=a.epochs))
    if a.out is not None:   # relative to the working directory; the config's data paths stay relative to it
        cfg = replace(cfg, out=os.path.abspath(a.out))
    out = train(cfg, resume=a.resume, log=lambda m: print(m, file=sys.stderr))
    print(out)
    return 0


def cmd_eval(a) -> int:
    from ..model import load_model
    from ..train.evaluate import evaluate_model

    model = load_model(a.model)
    if model.task != "classification":
        raise ValueError(f"eval: model {model.name!r} is a {model.task} model; eval measures classification models")
    r = evaluate_model(model, a.data, fast=not a.reference, check_reference=a.check, limit=a.limit)
    if a.json:
        print(json.dumps(r))
        return 0
    print(f"{r['model']} on {r['data']}: accuracy {r['accuracy']:.4f} over {r['n']} recordings ({r['kernels']} kernels)")
    ops = r["synaptic_ops"]
    print(f"  activation sparsity {r['activation_sparsity']:.4f}; per sample {ops['effective_acs']:.3g} ACs, "
          f"{ops['effective_macs']:.3g} MACs (dense {ops['dense']:.3g}); {r['params']:,} params, "
          f"{r['footprint_bytes']:,} bytes")
    if "reference_agreement" in r:
        print(f"  predictions equal to the other implementation's: {r['reference_agreement']:.4f}")
    if "streaming" in r:
        s = r["streaming"]
        print(f"  streaming: first commit correct {s['first_commit_correct']:.3f}, wrong {s['first_commit_wrong']:.3f}, "
              f"never {s['never_committed']:.3f}; correct within 300 ms {s['correct_within_300ms']:.3f}, any class "
              f"within 300 ms {s['committed_within_300ms']:.3f}; onset to a correct first commit (ms) "
              f"{s['commit_latency_ms']}")
    return 0


def register(sub) -> None:
    sp = sub.add_parser("train", help="train an SNN classifier from a config (surrogate gradients, TET, KD)",
                        description="Train as CONFIG (YAML, see configs/*.yaml) says: simulated or real data, "
                                    "BPTT with surrogate gradients and the TET loss, optional distillation from an "
                                    "ANN teacher. Writes checkpoints (safetensors, resumable), curves.png and the "
                                    "best model (model.json + model.safetensors) under OUT/NAME/.")
    sp.add_argument("config", help="a training config (YAML)")
    sp.add_argument("--resume", action="store_true", help="continue from the checkpoint in the output folder")
    sp.add_argument("--epochs", type=int, help="override optim.epochs (with --resume to more epochs than the run was "
                                                "started with, the cosine learning-rate schedule is spread over the "
                                                "new count from there on, so the result is not that of a run started "
                                                "with that many; resuming with the same count continues it exactly)")
    sp.add_argument("--out", help="override the output folder")
    sp.set_defaults(func=cmd_train)

    sp = sub.add_parser("eval", help="accuracy and efficiency of a model on a dataset",
                        description="Evaluate MODEL (a shipped model name or a model folder) on DATA: gesture:DIR, "
                                    "digits:DIR (simulated sets), nmnist:DIR (N-MNIST .bin/.bs2 files with a "
                                    "'sample class' list, or N-MNIST's Test/<digit>/ folders), dvsgesture:DIR (DVS128 "
                                    "Gesture's test trials, each labelled gesture a recording from its start). Runs "
                                    "the sparse kernels unless --reference.")
    sp.add_argument("model")
    sp.add_argument("data")
    sp.add_argument("--json", action="store_true",
                    help="one JSON object: accuracy, n, activation_sparsity, synaptic_ops, params, footprint_bytes, ...")
    sp.add_argument("--reference", action="store_true", help="use the torch reference instead of the sparse kernels")
    sp.add_argument("--check", action="store_true", help="also run the other implementation and report agreement")
    sp.add_argument("--limit", type=int, help="evaluate only the first N recordings")
    sp.set_defaults(func=cmd_eval)
