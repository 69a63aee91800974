"""CLI subcommands that live beside the features they drive.

Each module here defines ``register(subparsers)``, which adds its subcommand(s) with
``set_defaults(func=...)``; ``eventflow.cli`` registers every module of this package, in
name order. Errors are raised as ``ValueError``/``OSError`` (the CLI prints one line, exits 2).
"""
