"""Every example script (examples/*.py, and the docs' figure scripts) runs in small-data mode.

Each runs in a fresh interpreter from a scratch working directory with
``ANNOY_ADAPTERS_EXAMPLE_SMALL=1`` (the first ~20,000 GloVe words), must exit 0 within the time
limit and must print something: an example that shows nothing has rotted as surely as one that
crashes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(REPO.glob("examples/*.py")) + sorted(REPO.glob("docs/scripts/*.py"))
TIMEOUT_S = 120


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS, ids=[str(p.relative_to(REPO)) for p in SCRIPTS] or None)
def test_example_runs_in_small_mode(script, tmp_path):
    env = {
        **os.environ,
        "ANNOY_ADAPTERS_EXAMPLE_SMALL": "1",
        "MPLBACKEND": "Agg",
        "PYTHONUNBUFFERED": "1",
    }
    try:
        proc = subprocess.run(
            [sys.executable, str(script)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{script.name} did not finish within {TIMEOUT_S} s:\n{exc.stdout or ''}")
    assert proc.returncode == 0, (
        f"{script.name} exited with {proc.returncode}\n"
        f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"
    )
    assert proc.stdout.strip(), f"{script.name} printed nothing on stdout"


def test_there_are_examples():
    assert any(p.parent.name == "examples" for p in SCRIPTS), "examples/ holds no scripts"
