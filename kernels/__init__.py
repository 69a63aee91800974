"""numba CPU kernels of eventflow (shipped inside the package as ``eventflow.kernels``).

Every kernel sits beside a plain reference implementation it must equal; the
tests check them against each other on random and real inputs.
"""
import glob
import os
import re

_IMPORT = re.compile(r"^from \.(\w+) import", re.M)


def _drop_stale_caches(here: str = os.path.dirname(os.path.abspath(__file__))) -> list[str]:
    """Delete the numba cache index of a kernel module whose sources it calls into (its
    ``from .other import ...`` lines, and theirs in turn) are newer than that index, so that it compiles again:
    numba keys a cache on the defining file only, so a change in a callee would leave the
    caller's cached machine code stale. Returns the files removed. Only the default cache folder
    (``__pycache__`` beside the sources) is looked at: that is where a working tree's edits happen."""
    removed, direct = [], {}
    for path in glob.glob(os.path.join(here, "*.py")):
        try:
            with open(path, encoding="utf-8") as f:
                direct[os.path.splitext(os.path.basename(path))[0]] = set(_IMPORT.findall(f.read()))
        except OSError:
            continue
    for mod in direct:
        callees, todo = set(), list(direct[mod])   # callees of callees too: their code is compiled in
        while todo:
            c = todo.pop()
            if c not in callees:
                callees.add(c)
                todo.extend(direct.get(c, ()))
        try:
            if not callees:
                continue
            newest = max(os.path.getmtime(os.path.join(here, c + ".py")) for c in callees)
        except OSError:
            continue
        for index in glob.glob(os.path.join(here, "__pycache__", f"{mod}.*.nbi")):
            try:
                if os.path.getmtime(index) < newest:
                    os.remove(index)
                    removed.append(index)
            except OSError:   # (another process got there first, or the folder is read-only)
                pass
    return removed


_drop_stale_caches()
