"""numba CPU kernels of eventflow (shipped inside the package as ``eventflow.kernels``).

Every kernel sits beside a plain reference implementation it must equal; the
tests check them against each other on random and real inputs.
"""
