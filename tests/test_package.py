"""`pipeline` names what it offers in one place, and naming it costs no heavy import."""

from __future__ import annotations

import subprocess
import sys

import pytest

import pipeline


@pytest.mark.parametrize("name", [n for n in pipeline.__all__ if n != "__version__"])
def test_every_public_name_resolves_to_its_stage(name: str) -> None:
    value = getattr(pipeline, name)
    assert getattr(value, "__name__", name) == name
    assert value.__module__.startswith("pipeline.")


def test_unknown_names_are_an_attribute_error() -> None:
    with pytest.raises(AttributeError):
        pipeline.no_such_stage  # noqa: B018


def test_importing_the_package_loads_no_stage() -> None:
    code = "import sys, pipeline; print(sorted(m for m in sys.modules if m.startswith('pipeline.')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
