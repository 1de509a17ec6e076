"""Alternated builds: annoy's forest and annoy-adapters' built in turn, round after round.

The tables' build times come from jobs minutes apart, and this machine's speed drifts by
10-40% over a run (annoy's own 10-tree angular build read 3.75, 4.04 and 5.45 s in runs 16-18),
which is as large as the margins target 4 asks about. So target 4 also compares builds made
side by side: every round builds each configuration once (annoy on one thread, ours on each
thread count and vector dtype), in an order rotated from round to round, each in a fresh
worker process, and the fastest build of each configuration counts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from benchmarks.config import systems_for
from benchmarks.report import OURS
from benchmarks.systems import get_system

ANNOY = "annoy"


def paired_configs(cfg: dict, skipped: dict) -> list[dict]:
    """The builds to alternate: annoy (1 thread) and ours per thread count and dtype, all of
    the smallest forest both systems build; none when either system is not measured."""
    ours_trees = cfg.get("aa_n_trees") or cfg["n_trees"]
    common = sorted(set(cfg["n_trees"]) & set(ours_trees))
    if not cfg.get("paired_builds") or not common or ANNOY in skipped or OURS in skipped:
        return []
    if ANNOY not in cfg["systems"] or OURS not in cfg["systems"]:
        return []
    trees = common[0]

    def forests(system: str) -> list[dict]:
        # the variants of the tables' tree series (ours: trees only, no cells, as annoy builds)
        variants = get_system(system).variants(cfg)
        return [v for v in variants if v.get("n_trees") == trees and not v.get("probe")]

    out = [{"system": ANNOY, "threads": 1, "variant": v} for v in forests(ANNOY)]
    for threads in cfg["threads"]:
        if OURS in systems_for(cfg, threads):
            out += [{"system": OURS, "threads": threads, "variant": v} for v in forests(OURS)]
    return out


def paired_build_jobs(
    cfg: dict,
    skipped: dict,
    ddir: Path,
    run_job: Callable[[dict], dict],
    log: Callable[[str], None],
) -> Iterator[dict]:
    """Yield one record per (metric, configuration): every round's tree-building time."""
    configs = paired_configs(cfg, skipped)
    rounds = int(cfg.get("paired_builds") or 0)
    common = {"phase": "time_build", "seed": cfg["seed"], "k": cfg["k"], "data_dir": str(ddir)}
    for metric in cfg["metrics"] if configs else []:
        specs = [{**c, **common, "metric": metric, "build_repeats": 1} for c in configs]
        times: list[list[float]] = [[] for _ in configs]
        errors: list[str | None] = [None] * len(configs)
        for r in range(rounds):
            for i in [(j + r) % len(configs) for j in range(len(configs))]:
                got = run_job(specs[i])
                if "error" in got:
                    errors[i] = errors[i] or got["error"]
                else:
                    times[i].append(got["build_trees_s"])
        for c, runs, error in zip(configs, times, errors, strict=True):
            record = {"section": "paired", "metric": metric, **c, "runs_s": runs}
            if runs:
                record["build_trees_s"] = min(runs)
            if error:
                record["error"] = error
            shown = ", ".join(f"{t:.2f}" for t in runs)
            log(f"paired build {metric} {c['system']} t{c['threads']} {c['variant']}: {shown} s")
            yield record
