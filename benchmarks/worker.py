"""One benchmark job in its own process: ``python -m benchmarks.worker SPEC.json``.

A fresh process per job keeps peak RSS attributable to one system and lets
thread pools be pinned before NumPy loads. The spec (written by
``benchmarks.run``) names the phase:

* ``build``: build the index, save it, report build time and file size;
* ``query``: load the saved index (timed), run the knob sweeps;
* ``full``: build and sweep in one process (systems without a file format);
* ``time_build``: build once, report the build time only (the alternated builds).

The result JSON is written to ``spec["out"]``; on failure it holds
``{"error": traceback}`` and the exit status is 1.
"""

from __future__ import annotations

import json
import sys
import traceback


def _status_mb(field: str) -> float:
    """A ``/proc/self/status`` memory field (``VmRSS``, ``VmHWM``) in MB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def _rss_mb() -> float:
    return _status_mb("VmRSS")


def _peak_rss_mb() -> float:
    # VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss over from the
    # parent across fork+exec, so it would report the orchestrator's size.
    return _status_mb("VmHWM")


def _point(spec: dict, system, model, data: tuple, mode: str, knob, skipped: list) -> dict | None:
    """Time one knob value on all queries; None (and a ``skipped`` entry) if too slow.

    ``data`` is (train, queries, queries as the system takes them, ground-truth distances).
    """
    import time

    from benchmarks.recall import recall_at_k

    train, Q, prepared, gt = data
    k, threads = spec["k"], spec["threads"]
    # Probe a prefix first: a point projected to take far longer than the
    # limit is skipped instead of running for hours.  An exact system's one point
    # is the reference of target 2 and always runs (on a slow day run 18 projected
    # NumPy's euclidean brute force at 94 s and left target 2 without it).
    n_probe = max(1, min(200, len(Q) // 20))
    t0 = time.perf_counter()
    system.query(model, prepared[:n_probe], k, mode, knob, threads)
    projected = (time.perf_counter() - t0) * len(Q) / n_probe
    if system.knob is not None and projected > 2 * spec["max_point_seconds"]:
        skipped.append({"mode": mode, "value": knob, "projected_s": projected})
        return None
    best = float("inf")
    for _ in range(spec.get("repeats", 1)):
        t0 = time.perf_counter()
        ids = system.query(model, prepared, k, mode, knob, threads)
        best = min(best, time.perf_counter() - t0)
    return {
        "mode": mode,
        "knob": system.knob_name(knob),
        "value": knob,
        "recall": recall_at_k(train, Q, ids, gt, k, spec["metric"]),
        "seconds": best,
        "qps": len(Q) / best,
        "n_queries": len(Q),
    }


def _sweep(spec: dict, system, model, train, queries, gt_dist) -> tuple[list, list]:
    import numpy as np

    points, skipped = [], []
    for mode, knobs in spec["sweeps"].items():
        Q, gt = queries, gt_dist
        limit = spec.get("per_call_queries")
        if mode == "per-call" and limit and limit < len(queries):
            # A Python loop per query is slow: time an evenly spread subset.  Not a prefix:
            # the queries are in GloVe's row order, most frequent words first, and those
            # are easier (a prefix of 2,000 raised recall at a given search_k by ~0.1).
            pick = np.linspace(0, len(queries) - 1, limit).round().astype(np.int64)
            Q, gt = queries[pick], gt_dist[pick]
        prepared = system.prepare_queries(Q, mode)
        data = (train, Q, prepared, gt)
        # Untimed warm-up: first-call costs (lazy init, page faults, JIT).
        system.query(model, prepared[:50], spec["k"], mode, knobs[0], spec["threads"])
        for knob in knobs:
            point = _point(spec, system, model, data, mode, knob, skipped)
            if point is None:
                break
            points.append(point)
            if (
                point["recall"] >= spec["stop_recall"]
                or point["seconds"] > spec["max_point_seconds"]
            ):
                break  # larger knobs only cost more
        # Knobs outside the sweep's order (an exact mode): measured whatever stopped it.
        for knob in spec.get("finals", {}).get(mode, []):
            point = _point(spec, system, model, data, mode, knob, skipped)
            if point is not None:
                points.append(point)
    return points, skipped


def run(spec: dict) -> dict:
    """Execute ``spec`` and return the result dict (see module docstring)."""
    from benchmarks.threads import pin_current_process

    pin_current_process(spec["threads"])  # env vars, before NumPy is imported
    import os
    import resource
    import time

    import numpy as np

    pin_current_process(spec["threads"])  # threadpoolctl, now that pools exist
    from benchmarks.systems import get_system

    ddir = spec["data_dir"]
    train = np.load(os.path.join(ddir, "train.npy"))
    queries = np.load(os.path.join(ddir, "queries.npy"))
    gt_dist = np.load(os.path.join(ddir, f"gt_{spec['metric']}_dist.npy"))
    system = get_system(spec["system"])
    metric, variant, threads = spec["metric"], spec["variant"], spec["threads"]
    phase = spec["phase"]
    result: dict = {"phase": phase}
    system.setup()  # imports stay out of every timed section
    if phase in ("build", "full", "time_build"):
        system.warmup(metric, threads, variant)
    result["baseline_rss_mb"] = _rss_mb()
    if phase in ("build", "full", "time_build"):
        # the same build repeated: the fastest one's times count (the others met a busier
        # machine), and every build's total is kept
        runs, timings = [], []
        for _ in range(max(1, spec.get("build_repeats", 1))):
            model = None  # one index alive at a time
            t0 = time.perf_counter()
            model = system.build(train, metric, variant, threads, spec["seed"])
            runs.append(time.perf_counter() - t0)
            timings.append(dict(system.timings))
        fastest = int(np.argmin(runs))
        result["build_s"], result["build_runs_s"] = runs[fastest], runs
        result.update({f"build_{k}": v for k, v in timings[fastest].items()})
        if phase == "build":
            system.save(model, spec["index_path"])
            result["file_bytes"] = os.path.getsize(spec["index_path"])
    if phase == "query":
        path, f = spec["index_path"], train.shape[1]
        # The first load pays one-off costs (lazy imports inside the library);
        # repeated loads show the per-file cost. One model is alive at a time,
        # so the reloads do not inflate the peak RSS.
        times = []
        for _ in range(1 + spec.get("load_repeats", 3)):
            model = None
            t0 = time.perf_counter()
            model = system.load(path, f, metric, variant, threads)
            times.append(time.perf_counter() - t0)
        result["load_first_s"] = times[0]
        result["load_s"] = min(times[1:]) if len(times) > 1 else times[0]
    if phase in ("query", "full"):
        result["points"], result["skipped_points"] = _sweep(
            spec, system, model, train, queries, gt_dist
        )
    result["peak_rss_mb"] = _peak_rss_mb()
    result["peak_rss_delta_mb"] = result["peak_rss_mb"] - result["baseline_rss_mb"]
    # processes the library forked (annoy-adapters' n_jobs > 1 builds): the largest one's peak,
    # which counts the pages it shares with this process as well as its own
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    if children:
        result["children_peak_rss_mb"] = children
    return result


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m benchmarks.worker SPEC.json", file=sys.stderr)
        return 2
    with open(argv[0]) as fh:
        spec = json.load(fh)
    try:
        result, status = run(spec), 0
    except Exception:
        result, status = {"error": traceback.format_exc()}, 1
        print(result["error"], file=sys.stderr)
    with open(spec["out"], "w") as fh:
        json.dump(result, fh)
    return status


if __name__ == "__main__":
    sys.exit(main())
