"""The documentation must build and every code example in it must run.

Three checks keep the docs from rotting:

* ``mkdocs build --strict`` (warnings, broken links and missing anchors are errors);
* every ```` ```python ```` block of every ``docs/*.md`` page is executed, page by page in order,
  in one namespace per page, in a temporary working directory with
  ``ANNOY_ADAPTERS_EXAMPLE_SMALL=1``; ```` ```pycon ```` blocks (``>>>`` sessions) run as doctests
  in the same namespace. A block opts out only with ``<!-- skip-exec -->`` (optionally with a
  reason: ``<!-- skip-exec: full-size run -->``) on the line right before its opening fence;
* the docstring examples of every module of the ``annoy_adapters`` package run as doctests.
"""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import inspect
import linecache
import os
import pkgutil
import re
import subprocess
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
PAGES = sorted(DOCS.glob("*.md"))

PYTHON_LANGS = {"python", "py", "python3"}
PYCON_LANGS = {"pycon"}
SKIP_MARKER = re.compile(r"^\s*<!--\s*skip-exec\b.*-->\s*$")
FENCE_OPEN = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`]*?)\s*$")
DOCTEST_FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


@dataclass(frozen=True)
class CodeBlock:
    """One fenced code block of a Markdown page."""

    lang: str
    source: str
    lineno: int  # 1-based line of the first line of code
    skip: bool


def _language(info: str) -> str:
    # "python title="x.py" hl_lines="2"", "{.python .annotate}", "py" -> the first word, lowercased.
    first = info.split()[0] if info.split() else ""
    return first.strip("{}").lstrip(".").lower()


def extract_blocks(text: str) -> list[CodeBlock]:
    """Return the fenced code blocks of a Markdown text, in order (nested fences are not split).

    Examples
    --------
    >>> page = "Text\\n\\n```python title=\\"a.py\\"\\nx = 1\\n```\\n"
    >>> [(b.lang, b.source, b.lineno, b.skip) for b in extract_blocks(page)]
    [('python', 'x = 1\\n', 4, False)]
    """
    lines = text.splitlines()
    blocks: list[CodeBlock] = []
    i = 0
    while i < len(lines):
        match = FENCE_OPEN.match(lines[i])
        if not match:
            i += 1
            continue
        indent, fence, info = match["indent"], match["fence"], match["info"]
        # The opt-out marker is the last non-blank line before the opening fence.
        previous = next((ln for ln in reversed(lines[:i]) if ln.strip()), "")
        close = re.compile(rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}\s*$")
        body: list[str] = []
        j = i + 1
        while j < len(lines) and not close.match(lines[j]):
            # Blocks inside admonitions/tabs are indented: strip the fence's indentation.
            line = lines[j]
            body.append(line[len(indent) :] if line.startswith(indent) else line.lstrip())
            j += 1
        blocks.append(
            CodeBlock(
                lang=_language(info),
                source="\n".join(body) + "\n",
                lineno=i + 2,
                skip=bool(SKIP_MARKER.match(previous)),
            )
        )
        i = j + 1
    return blocks


def _runnable(blocks: list[CodeBlock]) -> list[CodeBlock]:
    return [b for b in blocks if b.lang in PYTHON_LANGS | PYCON_LANGS and not b.skip]


def _run_block(block: CodeBlock, namespace: dict, filename: str) -> None:
    """Execute one block in ``namespace``; raise AssertionError pointing at the page line."""
    # Pad with blank lines so tracebacks show the page's own line numbers.
    padded = "\n" * (block.lineno - 1) + block.source
    where = f"{filename}:{block.lineno}"
    if block.lang in PYCON_LANGS:
        test = doctest.DocTestParser().get_doctest(padded, namespace, where, filename, 0)
        runner = doctest.DocTestRunner(optionflags=DOCTEST_FLAGS)
        out: list[str] = []
        runner.run(test, out=out.append, clear_globs=False)
        if runner.failures:
            raise AssertionError(f"pycon block at {where} failed:\n" + "".join(out))
        return
    linecache.cache[filename] = (len(padded), None, padded.splitlines(True), filename)
    try:
        exec(compile(padded, filename, "exec"), namespace)
    except Exception as exc:  # report which block of which page broke, with its traceback
        raise AssertionError(
            f"python block at {where} raised {type(exc).__name__}:\n{traceback.format_exc()}"
        ) from exc


# -- the machinery itself must work, or every page would pass vacuously -------------------------


def test_extract_blocks_finds_titled_indented_and_marked_blocks():
    page = "\n".join(
        [
            "# Title",
            '```python title="example.py"',
            "a = 1",
            "```",
            "<!-- skip-exec: full-size run -->",
            "```python",
            "raise SystemExit('must not run')",
            "```",
            '=== "Tab"',
            "",
            "    ```py",
            "    if a:",
            "        b = a + 1",
            "    ```",
            "```bash",
            "pip install annoy-adapters",
            "```",
            "~~~pycon",
            ">>> b * 2",
            "4",
            "~~~",
        ]
    )
    blocks = extract_blocks(page)
    assert [(b.lang, b.skip) for b in blocks] == [
        ("python", False),
        ("python", True),
        ("py", False),
        ("bash", False),
        ("pycon", False),
    ]
    assert blocks[2].source == "if a:\n    b = a + 1\n"
    assert blocks[0].lineno == 3
    namespace: dict = {}
    for block in _runnable(blocks):
        _run_block(block, namespace, "page.md")
    assert namespace["b"] == 2


def test_run_block_reports_the_page_line_of_a_failure():
    block = CodeBlock("python", "x = 1\n1 / 0\n", lineno=10, skip=False)
    with pytest.raises(AssertionError, match=r"page\.md:10 raised ZeroDivisionError") as info:
        _run_block(block, {}, "page.md")
    assert 'page.md", line 11' in str(info.value)
    wrong = CodeBlock("pycon", ">>> 1 + 1\n3\n", lineno=5, skip=False)
    with pytest.raises(AssertionError, match=r"pycon block at page\.md:5 failed"):
        _run_block(wrong, {}, "page.md")


# -- every page's code runs -------------------------------------------------------------------


@pytest.fixture
def example_env(tmp_path, monkeypatch):
    """A scratch working directory and the small-data mode, as CI runs the examples."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ANNOY_ADAPTERS_EXAMPLE_SMALL", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    yield tmp_path
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_page_code_blocks_run(page, example_env):
    blocks = _runnable(extract_blocks(page.read_text(encoding="utf-8")))
    if not blocks:
        pytest.skip(f"{page.name} has no executable python/pycon code blocks")
    rel = str(page.relative_to(REPO))
    # __name__ == "__main__" so `if __name__ == "__main__":` guards (Dask, multiprocessing) run.
    namespace: dict = {"__name__": "__main__", "__file__": str(example_env / page.name)}
    for block in blocks:
        _run_block(block, namespace, rel)


# -- docstring examples -------------------------------------------------------------------------


def _package_modules() -> list[str]:
    """Every module of annoy_adapters and of annoy_adapters.core (a package mapped from core/)."""
    try:
        packages = [importlib.import_module(p) for p in ("annoy_adapters", "annoy_adapters.core")]
    except Exception:  # reported by the test itself, not as a collection error
        return ["annoy_adapters", "annoy_adapters.core"]
    names = {p.__name__ for p in packages}
    for package in packages:
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if info.name.rsplit(".", 1)[-1] != "__main__":
                names.add(info.name)
    return sorted(names)


def _optional_dependency_missing(exc: ModuleNotFoundError) -> bool:
    return bool(exc.name) and not exc.name.startswith("annoy_adapters")


def _doctests(module_name: str) -> list[doctest.DocTest]:
    module = importlib.import_module(module_name)
    return [t for t in doctest.DocTestFinder(exclude_empty=True).find(module) if t.examples]


def _modules_with_examples() -> list[str]:
    """Modules that hold docstring examples; a module that fails to import is kept (and fails)."""
    names = []
    for name in _package_modules():
        try:
            if _doctests(name):
                names.append(name)
        except Exception:
            names.append(name)
    return names


@pytest.mark.parametrize("module_name", _modules_with_examples())
def test_docstring_examples(module_name, example_env):
    try:
        tests = _doctests(module_name)
    except ModuleNotFoundError as exc:
        if _optional_dependency_missing(exc):
            pytest.skip(f"{module_name} needs the optional dependency {exc.name!r}")
        raise
    runner = doctest.DocTestRunner(optionflags=DOCTEST_FLAGS)
    out: list[str] = []
    for test in tests:
        runner.run(test, out=out.append)
    assert runner.tries > 0
    assert runner.failures == 0, "".join(out)


PUBLIC_MODULES = [
    "annoy_adapters",
    "annoy_adapters.sklearn",
    "annoy_adapters.gensim",
    "annoy_adapters.pandas",
    "annoy_adapters.dask",
]


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_public_api_has_examples(module_name):
    """Team standard: every public class and function shows a short runnable example."""
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if _optional_dependency_missing(exc):
            pytest.skip(f"{module_name} needs the optional dependency {exc.name!r}")
        raise
    missing = []
    for name in getattr(module, "__all__", []):
        obj = getattr(module, name)
        is_error = inspect.isclass(obj) and issubclass(obj, BaseException)
        if (inspect.isclass(obj) and not is_error) or inspect.isfunction(obj):
            if ">>>" not in (inspect.getdoc(obj) or ""):
                missing.append(name)
    assert not missing, f"{module_name}: no docstring example in {', '.join(missing)}"


# -- the site builds ----------------------------------------------------------------------------


def _missing_doc_tools() -> list[str]:
    needed = ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python")
    missing = []
    for name in needed:
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            missing.append(name)
    return missing


@pytest.mark.slow
def test_mkdocs_build_strict(tmp_path):
    missing = _missing_doc_tools()
    if missing:
        pytest.skip(f"docs tools not installed ({', '.join(missing)}): pip install -e '.[docs]'")
    site = tmp_path / "site"
    env = {**os.environ, "MPLBACKEND": "Agg"}
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
    # mkdocstrings really rendered the reference (an empty page would also "build").
    reference = (site / "api" / "core" / "index.html").read_text(encoding="utf-8")
    assert "AnnoyIndex" in reference and "get_nns_by_vector" in reference
    for page in PAGES:
        assert (site / page.stem / "index.html").exists() or page.name == "index.md", page.name
