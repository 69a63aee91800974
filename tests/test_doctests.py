"""The examples in the library's docstrings (kernels included) run and print what they show."""
import doctest
import importlib
import pkgutil

import pytest

import eventflow
import eventflow.kernels

FINDER = doctest.DocTestFinder(exclude_empty=True)


def _with_examples():
    names = []
    found = list(pkgutil.walk_packages(eventflow.__path__, "eventflow."))
    found += pkgutil.walk_packages(eventflow.kernels.__path__, "eventflow.kernels.")  # kernels/, mapped in
    for m in found:
        if m.name.endswith("__main__"):   # importing it runs the command line
            continue
        module = importlib.import_module(m.name)
        if any(t.examples for t in FINDER.find(module, m.name)):
            names.append(m.name)
    return sorted(names)


MODULES = _with_examples()


def test_the_kernels_are_among_the_modules_searched():
    assert "eventflow.kernels.ecf" in MODULES and len(MODULES) >= 30


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for t in FINDER.find(module, name):
        if t.examples:
            runner.run(t)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} docstring examples of {name} failed (output above)"
