"""numba CPU kernels of eventflow (shipped inside the package as ``eventflow.kernels``).

Every kernel sits beside a plain reference implementation it must equal; the
tests check them against each other on random and real inputs.
"""
import glob
import os

#: kernel modules whose cached (numba ``cache=True``) functions call functions of other modules:
#: numba keys a cache on the defining file only, so a change in a dependency would leave the
#: dependent's cached machine code stale
_CALLS_INTO = {"raster": ("sim",), "binning": ("words",), "bounds": ("words",), "filters": ("words",),
               "surface": ("words",), "window_bin": ("words",)}


def _drop_stale_caches(here: str = os.path.dirname(os.path.abspath(__file__))) -> list[str]:
    """Delete the numba cache index of a module whose dependency's source is newer than it (so it
    compiles again); returns the files removed. Only the default cache folder (``__pycache__``
    beside the sources) is looked at: that is where a working tree's edits happen."""
    removed = []
    for mod, deps in _CALLS_INTO.items():
        try:
            newest = max(os.path.getmtime(os.path.join(here, d + ".py")) for d in deps)
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
