"""Run the benchmark: ``python -m benchmarks.run [--quick] [options]``.

Prepares the data (GloVe 6B 50d split and synthetic scaling series, with
exact ground truth cached under ``--cache-dir``), then runs every
(system, build variant, metric, thread count) job in its own subprocess,
strictly one after another so jobs never compete for the two cores, then the
alternated annoy / annoy-adapters builds of target 4 (``paired.py``). Writes
``<name>.json``, ``<name>.md`` and ``<name>.png`` (+ ``<name>-scaling.png``)
under ``--out-dir`` and prints the target checks.  While it runs, every finished job
is saved to ``<name>.partial.json`` (removed at the end): a run stopped early keeps what it
measured, and ``python -m benchmarks.report <name>.partial.json`` renders it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from importlib import metadata
from pathlib import Path

from benchmarks.config import ALL_SYSTEMS, defaults, systems_for
from benchmarks.paired import paired_build_jobs
from benchmarks.threads import thread_env

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def _comma_list(allowed: Sequence[str], error: str) -> Callable[[str], list[str]]:
    """Parser of a comma list of names from ``allowed``; ``error`` formats the first other one
    (``{bad}``, ``{allowed}``)."""

    def parse(text: str) -> list[str]:
        names = [x.strip() for x in text.split(",") if x.strip()]
        bad = [n for n in names if n not in allowed]
        if bad:
            raise argparse.ArgumentTypeError(error.format(bad=bad[0], allowed=allowed))
        return names

    return parse


_names = _comma_list(ALL_SYSTEMS, "unknown system {bad!r}; known: {allowed}")
_metrics = _comma_list(
    ("angular", "euclidean"), "metric must be angular or euclidean (got {bad!r})"
)
_dtypes = _comma_list(("float32", "float16"), "dtype must be float32 or float16 (got {bad!r})")


def _cpu_model() -> str:
    """The processor's name and model number (Linux), else what ``platform`` knows: runs on
    machines of one kind differ (annoy's 10 angular GloVe trees: 4.0-4.5 s in run 22, 3.6-3.7 s
    on a later machine of the same kind)."""
    fallback = platform.processor() or "unknown"
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return fallback
    info = {k.strip(): v.strip() for k, v in (ln.split(":", 1) for ln in lines if ":" in ln)}
    name = info.get("model name", fallback)
    return f"{name} (family {info.get('cpu family', '?')}, model {info.get('model', '?')})"


def parse_args(argv: list[str] | None = None) -> dict:
    """Parse the command line into a configuration dict (see ``--help``)."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="small smoke run (< 60 s)")
    p.add_argument("--name", help="basename of the result files (default: full / quick)")
    p.add_argument("--out-dir", type=Path, default=HERE / "results")
    p.add_argument("--cache-dir", type=Path, default=HERE / "cache")
    p.add_argument("--n-index", type=int, help="indexed GloVe points (full: 390000)")
    p.add_argument("--n-queries", type=int, help="held-out queries (full: 10000)")
    p.add_argument("--seed", type=int)
    p.add_argument("--metrics", type=_metrics, help="comma list: angular,euclidean")
    p.add_argument("--threads", type=_ints, help="thread counts to run, e.g. 1,2")
    p.add_argument("--systems", type=_names, help=f"comma list of {','.join(ALL_SYSTEMS)}")
    p.add_argument("--systems-2threads", type=_names, help="systems for thread counts > 1")
    p.add_argument("--n-trees", type=_ints, help="annoy / annoy-adapters forests, e.g. 10,50")
    p.add_argument("--search-k", type=_ints, help="search_k sweep")
    p.add_argument("--probe", type=_ints, help="annoy-adapters cell scan sweep; '' skips it")
    p.add_argument("--ef", type=_ints, help="hnswlib ef sweep")
    p.add_argument("--epsilon", type=_floats, help="pynndescent epsilon sweep")
    p.add_argument(
        "--aa-n-trees", type=_ints, help="annoy-adapters' forests (full: 10; '': --n-trees)"
    )
    p.add_argument("--aa-leaf-size", type=int, help="leaf_size for annoy-adapters")
    p.add_argument(
        "--aa-vector-dtypes", type=_dtypes, help="annoy-adapters vector_dtype(s): float32,float16"
    )
    p.add_argument("--stop-recall", type=float, help="stop a sweep once this recall is reached")
    p.add_argument("--max-point-seconds", type=float, help="stop a sweep after a slower point")
    p.add_argument(
        "--per-call-queries",
        type=int,
        help="time per-call modes on this many queries, evenly spread (full: 2000; 0: all)",
    )
    p.add_argument("--repeats", type=int, help="time each point this many times, keep the best")
    p.add_argument(
        "--build-repeats", type=int, help="build each index this many times, keep the fastest"
    )
    p.add_argument(
        "--paired-builds",
        type=int,
        help="rounds of alternated annoy / annoy-adapters builds for target 4; 0 skips them",
    )
    p.add_argument("--scale-sizes", type=_ints, help="synthetic series sizes; '' skips it")
    p.add_argument("--scale-queries", type=int)
    p.add_argument("--scale-systems", type=_names)
    p.add_argument("--worker-timeout", type=float, help="seconds before a job is killed")
    p.add_argument("--keep-indexes", action="store_true", help="keep saved index files")
    a = p.parse_args(argv)
    cfg = defaults(a.quick)
    for key, val in vars(a).items():
        if key in ("quick", "out_dir", "cache_dir", "keep_indexes"):
            continue
        if val is not None:
            cfg[key] = val
    cfg.update(
        quick=a.quick,
        out_dir=str(a.out_dir),
        cache_dir=str(a.cache_dir),
        keep_indexes=a.keep_indexes,
    )
    if cfg["systems_2threads"] is None:
        cfg["systems_2threads"] = list(cfg["systems"])
    return cfg


def _log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _versions(names: list[str]) -> dict[str, str]:
    from benchmarks.systems import get_system

    out = {}
    for name in names:
        dist = get_system(name).dist
        try:
            out[name] = metadata.version(dist) if dist else "-"
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def _save_json(results: dict, path: Path) -> None:
    """Write ``results`` to ``path`` whole or not at all (the index files' atomic save)."""
    from annoy_adapters.core._atomic import replace_atomically

    with replace_atomically(path) as fh:
        fh.write(json.dumps(results, indent=1, default=str).encode())


def run_job(spec: dict, cfg: dict, workdir: Path) -> dict:
    """Run one worker subprocess with pinned thread pools; return its result."""
    spec = dict(spec)
    fd, out = tempfile.mkstemp(suffix=".json", dir=workdir)
    os.close(fd)
    spec["out"] = out
    spec_path = out[:-5] + "-spec.json"
    Path(spec_path).write_text(json.dumps(spec))
    env = thread_env(spec["threads"])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    t0 = time.perf_counter()
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "benchmarks.worker", spec_path],
            env=env,
            cwd=ROOT,
            timeout=cfg["worker_timeout"],
            capture_output=True,
            text=True,
        )
        result = json.loads(Path(out).read_text() or "{}")
        if proc.returncode != 0 and "error" not in result:
            result["error"] = f"exit {proc.returncode}: {proc.stderr[-2000:]}"
    except subprocess.TimeoutExpired:
        result = {"error": f"timed out after {cfg['worker_timeout']} s"}
    except json.JSONDecodeError:
        result = {"error": f"no result written (exit {proc.returncode}): {proc.stderr[-2000:]}"}
    finally:
        for path in (out, spec_path):
            Path(path).unlink(missing_ok=True)
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    result["wall_s"] = time.perf_counter() - t0
    result["cpu_s"] = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    return result


def _variant_tag(variant: dict) -> str:
    return "-".join(f"{k}{v}" for k, v in variant.items() if v is not None) or "default"


def glove_jobs(cfg: dict, system_name: str, metric: str, threads: int, ddir: Path, workdir: Path):
    """Yield result records for one system on the GloVe split."""
    from benchmarks.systems import get_system

    system = get_system(system_name)
    for variant in system.variants(cfg):
        record = {
            "section": "glove",
            "system": system_name,
            "variant": variant,
            "metric": metric,
            "threads": threads,
            "n_index": cfg["n_index"],
            "labels": {m: system.label(variant, m) for m in system.modes},
        }
        base = {
            "system": system_name,
            "metric": metric,
            "threads": threads,
            "variant": variant,
            "seed": cfg["seed"],
            "k": cfg["k"],
            "data_dir": str(ddir),
            "stop_recall": cfg["stop_recall"],
            "max_point_seconds": cfg["max_point_seconds"],
            "repeats": cfg["repeats"],
            "build_repeats": cfg["build_repeats"],
            "per_call_queries": cfg["per_call_queries"],
            "sweeps": {m: system.sweep(cfg, variant, m) for m in system.modes},
            "finals": {m: system.finals(cfg, variant, m) for m in system.modes},
        }
        tag = f"{system_name}-{metric}-t{threads}-{_variant_tag(variant)}"
        _log(f"{tag}: start")
        if system.persistent:
            index_path = Path(cfg["cache_dir"]) / "indexes" / f"{tag}.idx"
            index_path.parent.mkdir(parents=True, exist_ok=True)
            try:
                spec = {**base, "index_path": str(index_path)}
                built = run_job({**spec, "phase": "build"}, cfg, workdir)
                record["build"] = built
                if "error" not in built:
                    record["query"] = run_job({**spec, "phase": "query"}, cfg, workdir)
            finally:
                if not cfg["keep_indexes"]:
                    index_path.unlink(missing_ok=True)
        else:
            full = run_job({**base, "phase": "full"}, cfg, workdir)
            record["build"] = record["query"] = full
        _flatten(record)
        _log(f"{tag}: {_one_line(record)}")
        yield record


def _flatten(record: dict) -> None:
    """Lift the phase results into one flat record (errors kept verbatim)."""
    b, q = record.get("build", {}), record.get("query", {})
    errors = [x["error"] for x in (b, q) if "error" in x]
    if errors:
        record["error"] = errors[0]
    for key in ("build_s", "build_runs_s", "build_add_s", "build_trees_s", "file_bytes"):
        if key in b:
            record[key] = b[key]
    for key in ("load_s", "load_first_s"):
        if key in q:
            record[key] = q[key]
    record["points"] = q.get("points", [])
    record["skipped_points"] = q.get("skipped_points", [])
    record["build_peak_rss_mb"] = b.get("peak_rss_mb")
    record["query_peak_rss_mb"] = q.get("peak_rss_mb")
    record["children_peak_rss_mb"] = b.get("children_peak_rss_mb")
    record["peak_rss_delta_mb"] = max(
        (x.get("peak_rss_delta_mb", 0.0) for x in (b, q) if x), default=None
    )
    record["baseline_rss_mb"] = b.get("baseline_rss_mb")
    for key in ("wall_s", "cpu_s"):  # whole job, both processes
        record[key] = b.get(key, 0.0) + (q.get(key, 0.0) if q is not b else 0.0)
    record.pop("build", None)
    record.pop("query", None)


def _one_line(record: dict) -> str:
    if "error" in record:
        return "ERROR " + record["error"].strip().splitlines()[-1][:200]
    pts = record["points"]
    best = max(pts, key=lambda p: p["recall"]) if pts else None
    parts = []
    if "build_s" in record:
        parts.append(f"build {record['build_s']:.2f} s")
    if "file_bytes" in record:
        parts.append(f"file {record['file_bytes'] / 1e6:.1f} MB")
    if "load_s" in record:
        first = record["load_first_s"] * 1e3
        parts.append(f"load {record['load_s'] * 1e3:.1f} ms (first {first:.1f})")
    if best:
        top = f"top recall {best['recall']:.3f} at {best['qps']:,.0f} q/s"
        parts.append(f"{len(pts)} points, {top}")
    return ", ".join(parts)


def scale_jobs(cfg: dict, workdir: Path):
    """Yield records for the synthetic scaling series (1 thread, fixed knobs)."""
    from benchmarks.data import prepare_synthetic
    from benchmarks.systems import BATCH, PER_CALL, get_system

    knob = {"annoy": cfg["scale_search_k"], "annoy-adapters": cfg["scale_search_k"]}
    knob["hnswlib"] = cfg["scale_ef"]
    knob["pynndescent"] = 0.1
    metric = cfg["scale_metric"]
    for n in cfg["scale_sizes"]:
        ddir = prepare_synthetic(
            Path(cfg["cache_dir"]), n, cfg["scale_dim"], cfg["scale_queries"], cfg["seed"],
            (metric,), log=_log,
        )  # fmt: skip
        for name in cfg["scale_systems"]:
            system = get_system(name)
            variant = {"n_trees": cfg["scale_n_trees"]} if system.knob == "search_k" else {}
            if name == "hnswlib":
                variant = system.variants(cfg)[0]
            mode = BATCH if BATCH in system.modes else PER_CALL
            spec = {
                "phase": "full",
                "system": name,
                "metric": metric,
                "threads": 1,
                "variant": variant,
                "seed": cfg["seed"],
                "k": cfg["k"],
                "data_dir": str(ddir),
                "stop_recall": 2.0,
                "max_point_seconds": float("inf"),
                "repeats": 1,
                "sweeps": {mode: [knob.get(name)]},
            }
            record = {
                "section": "scale",
                "system": name,
                "variant": variant,
                "metric": metric,
                "threads": 1,
                "n_index": n,
                "dim": cfg["scale_dim"],
                "labels": {mode: system.label(variant, mode)},
                "query": run_job(spec, cfg, workdir),
            }
            record["build"] = record["query"]
            _flatten(record)
            _log(f"scale n={n:,} {name}: {_one_line(record)}")
            yield record


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)
    from benchmarks.data import prepare_glove
    from benchmarks.plot import plot_recall_qps, plot_scaling
    from benchmarks.report import check_targets, glove_measured, markdown_report, target_scope
    from benchmarks.systems import missing_requirement

    t_start = time.perf_counter()
    out_dir, cache_dir = Path(cfg["out_dir"]), Path(cfg["cache_dir"])
    out_dir.mkdir(parents=True, exist_ok=True)
    cache_dir.mkdir(parents=True, exist_ok=True)
    wanted = sorted(
        set(cfg["systems"]) | set(cfg["systems_2threads"]) | set(cfg["scale_systems"]),
        key=ALL_SYSTEMS.index,
    )
    skipped = {n: missing_requirement(n) for n in wanted}
    skipped = {n: f"module {m!r} not installed" for n, m in skipped.items() if m}
    for name, why in skipped.items():
        _log(f"skipping {name}: {why}")
    results = {
        "meta": {
            "name": cfg["name"],
            "started": dt.datetime.now().isoformat(timespec="seconds"),
            "python": platform.python_version(),
            "machine": platform.machine(),
            "cpu_count": os.cpu_count(),
            "cpu": _cpu_model(),
            "versions": _versions(wanted),
            "skipped": skipped,
            "config": cfg,
        },
        "runs": [],
        "scale": [],
    }
    ddir = prepare_glove(
        cache_dir, cfg["n_index"], cfg["n_queries"], cfg["seed"], tuple(cfg["metrics"]), log=_log
    )
    name = cfg["name"]
    partial_path = out_dir / f"{name}.partial.json"

    def keep(part: str, records: Iterable[dict]) -> None:
        """Add each finished job's record and save the run so far (a long run may be stopped)."""
        for record in records:
            results.setdefault(part, []).append(record)
            results["meta"]["elapsed_s"] = time.perf_counter() - t_start
            _save_json(results, partial_path)

    results["meta"]["partial"] = True
    with tempfile.TemporaryDirectory(prefix="bench-", dir=cache_dir) as tmp:
        workdir = Path(tmp)
        for threads in cfg["threads"]:
            for metric in cfg["metrics"]:
                for system in systems_for(cfg, threads):
                    if system not in skipped:
                        keep("runs", glove_jobs(cfg, system, metric, threads, ddir, workdir))
        job = functools.partial(run_job, cfg=cfg, workdir=workdir)
        keep("paired", paired_build_jobs(cfg, skipped, ddir, job, _log))
        keep(
            "scale",
            scale_jobs(
                {**cfg, "scale_systems": [s for s in cfg["scale_systems"] if s not in skipped]},
                workdir,
            ),
        )
    del results["meta"]["partial"]
    results["targets"] = check_targets(results)
    results["meta"]["finished"] = dt.datetime.now().isoformat(timespec="seconds")
    results["meta"]["elapsed_s"] = time.perf_counter() - t_start
    json_path, md_path = out_dir / f"{name}.json", out_dir / f"{name}.md"
    png_path, scale_png = out_dir / f"{name}.png", out_dir / f"{name}-scaling.png"
    written = [json_path, md_path]
    glove = glove_measured(results)
    if glove:
        plot_recall_qps(results, png_path)
        written.append(png_path)
    if results["scale"]:
        plot_scaling(results, scale_png)
        written.append(scale_png)
    md_path.write_text(markdown_report(results, png_path.name if glove else None, scale_png.name))
    _save_json(results, json_path)
    partial_path.unlink(missing_ok=True)
    print()
    for t in results["targets"]:
        print(f"Target {t['target']} [{target_scope(t)}]: {t['status']}  {t['detail']}")
    _log(f"wrote {', '.join(map(str, written))} in {results['meta']['elapsed_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
