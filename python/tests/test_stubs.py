"""The typed stubs (genroute/_genroute.pyi, shipped with py.typed) match the module."""

from __future__ import annotations

import subprocess
import sys
import tempfile


def test_stubtest() -> None:
    # From a scratch directory, so that the installed package is checked, not the source tree.
    with tempfile.TemporaryDirectory() as cwd:
        out = subprocess.run([sys.executable, "-m", "mypy.stubtest", "genroute"],
                             capture_output=True, text=True, timeout=300, cwd=cwd)
    assert out.returncode == 0, out.stdout + out.stderr


def test_py_typed_is_shipped() -> None:
    import pathlib

    import genroute

    assert (pathlib.Path(genroute.__file__).parent / "py.typed").exists()
    assert (pathlib.Path(genroute.__file__).parent / "_genroute.pyi").exists()


def test_every_class_is_frozen() -> None:
    import genroute

    p = genroute.Policy.demo()
    for obj, attr in [(p, "name"), (genroute.State(), "spend"), (p.decide({}), "backend")]:
        try:
            setattr(obj, attr, 1)
        except AttributeError:
            continue
        raise AssertionError(f"{type(obj).__name__}.{attr} could be set")
