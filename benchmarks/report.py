"""Summaries of a benchmark result: Markdown tables and target checks.

Throughput at a recall level is interpolation-free: the best *measured*
point of a series whose recall@10 is at least that level. Ratios compare with
annoy's best one-query-per-call throughput at the same level, over all of
annoy's build variants (its n_trees x search_k grid).

Can also be run on a saved result: ``python -m benchmarks.report RESULT.json``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

LEVELS = (0.90, 0.95, 0.99)
OURS = "annoy-adapters"


def series(results: dict, metric: str, threads: int) -> list[dict]:
    """One entry per (system, build variant, query mode) of the GloVe section."""
    out = []
    for rec in results.get("runs", []):
        if rec["metric"] != metric or rec["threads"] != threads:
            continue
        modes = rec.get("labels", {})
        for mode, label in modes.items():
            pts = [p for p in rec.get("points", []) if p["mode"] == mode]
            out.append({**rec, "mode": mode, "label": label, "points": pts})
    return out


def best_qps(points: list[dict], level: float) -> float | None:
    """Highest q/s among points with recall >= ``level`` (None if none).

    Examples
    --------
    >>> best_qps([{"recall": 0.91, "qps": 10.0}, {"recall": 0.89, "qps": 50.0}], 0.9)
    10.0
    """
    ok = [p["qps"] for p in points if p["recall"] >= level]
    return max(ok) if ok else None


def _best_of(ser: list[dict], level: float, system: str, mode: str | None = None) -> float | None:
    vals = [
        best_qps(s["points"], level)
        for s in ser
        if s["system"] == system and (mode is None or s["mode"] == mode)
    ]
    vals = [v for v in vals if v is not None]
    return max(vals) if vals else None


def _fmt_qps(q: float | None, ref: float | None) -> str:
    if q is None:
        return "-"
    return f"{q:,.0f} ({q / ref:.2f}x)" if ref else f"{q:,.0f}"


def _fmt(v, scale: float = 1.0, fmt: str = "{:,.1f}") -> str:
    return "-" if v is None else fmt.format(v * scale)


def _load(s: dict) -> str:
    if s.get("load_s") is None:
        return "-"
    return f"{s['load_s'] * 1e3:,.2f} ({s.get('load_first_s', s['load_s']) * 1e3:,.2f})"


def glove_table(results: dict, metric: str, threads: int) -> str:
    """Markdown table for one metric and thread count."""
    ser = series(results, metric, threads)
    if not ser:
        return ""
    ref = {lv: _best_of(ser, lv, "annoy") for lv in LEVELS}
    head = (
        "| system | "
        + " | ".join(f"q/s @ recall>={lv:.2f} (x annoy)" for lv in LEVELS)
        + " | max recall | build s | file MB | load ms (first) | peak RSS MB (+delta) |"
    )
    lines = [head, "|" + "---|" * (len(LEVELS) + 6)]
    for s in ser:
        if "error" in s:
            err = s["error"].strip().splitlines()[-1][:80]
            lines.append(f"| {s['label']} | ERROR: {err} |" + " |" * (len(LEVELS) + 4))
            continue
        top = max((p["recall"] for p in s["points"]), default=None)
        rss = [x for x in (s.get("build_peak_rss_mb"), s.get("query_peak_rss_mb")) if x]
        rss_txt = (
            f"{max(rss):,.0f} (+{s['peak_rss_delta_mb']:,.0f})"
            if rss and s.get("peak_rss_delta_mb") is not None
            else "-"
        )
        if s.get("children_peak_rss_mb"):
            rss_txt += f", build child {s['children_peak_rss_mb']:,.0f}"
        cells = [_fmt_qps(best_qps(s["points"], lv), ref[lv]) for lv in LEVELS]
        build = s.get("build_trees_s", s.get("build_s"))
        lines.append(
            f"| {s['label']} | "
            + " | ".join(cells)
            + f" | {_fmt(top, fmt='{:.4f}')} | {_fmt(build, fmt='{:,.2f}')}"
            + f" | {_fmt(s.get('file_bytes'), 1e-6)} | {_load(s)}"
            + f" | {rss_txt} |"
        )
    ann = " / ".join(_fmt(ref[lv], fmt="{:,.0f}") for lv in LEVELS)
    cut = [
        f"{s['label']} at {p['value']} (projected {p['projected_s']:,.0f} s)"
        for s in ser
        for p in s.get("skipped_points", [])
        if p["mode"] == s["mode"]
    ]
    if cut:
        why = "Sweeps cut short (a point projected over 2x the time limit): "
        lines += ["", why + "; ".join(cut)]
    lines.append("")
    lines.append(f"annoy's best one-query-per-call q/s at {'/'.join(map(str, LEVELS))}: {ann}.")
    return "\n".join(lines)


def _status(ok: bool | None) -> str:
    return "FAIL" if not ok else "PASS"


def glove_measured(results: dict) -> bool:
    """Whether the run measured GloVe jobs (a run of the scaling series alone does not)."""
    return bool(results.get("runs") or results.get("paired"))


def check_targets(results: dict) -> list[dict]:
    """Evaluate the issue's targets 1-5 (and report 6) per metric.

    Missing measurements make a target FAIL with "no data" in the detail; a run without GloVe
    jobs (the scaling series alone) checks none.
    Build comparisons use the time of the tree-building call alone
    (annoy's ``build``; annoy-adapters' ``build`` of a tree variant, trees only), not adding
    the items; the probe variants' builds (trees and cells) are shown beside, not counted.
    """
    out: list[dict] = []
    if not glove_measured(results):
        return out
    metrics = results["meta"]["config"]["metrics"]
    for metric, config, s1, s2 in _configurations(results, metrics):

        def add(
            target: str, ok: bool | None, detail: str, metric: str = metric, config: str = config
        ) -> None:
            status = _status(ok)
            out.append(
                {
                    "target": target,
                    "metric": metric,
                    "config": config,
                    "status": status,
                    "detail": detail,
                }
            )

        ann = {lv: _best_of(s1, lv, "annoy") for lv in LEVELS}
        batch = {lv: _best_of(s1, lv, OURS, "batch") for lv in LEVELS}
        one = {lv: _best_of(s1, lv, OURS, "per-call") for lv in LEVELS}
        brute = _best_of(s1, 0.99, "numpy-brute")

        def ratio(a: float | None, b: float | None) -> str:
            if a is None or b is None:
                who = [n for n, v in ((OURS, a), ("the reference", b)) if v is None]
                return "no data for " + " and ".join(who)
            return f"{a:,.0f} vs {b:,.0f} q/s = {a / b:.2f}x"

        ok1 = batch[0.90] is not None and ann[0.90] is not None and batch[0.90] >= 2 * ann[0.90]
        add("1", ok1, f"batch @0.90 vs annoy: {ratio(batch[0.90], ann[0.90])} (need >= 2x)")
        ok2a = batch[0.99] is not None and ann[0.99] is not None and batch[0.99] >= 2 * ann[0.99]
        ok2b = batch[0.99] is not None and brute is not None and batch[0.99] > brute
        add(
            "2",
            ok2a and ok2b,
            f"batch @0.99 vs annoy: {ratio(batch[0.99], ann[0.99])} (need >= 2x); "
            f"vs NumPy brute force: {ratio(batch[0.99], brute)} (need > 1x)",
        )
        ok3 = one[0.90] is not None and ann[0.90] is not None and one[0.90] >= ann[0.90]
        detail = f"get_nns_by_vector @0.90 vs annoy: {ratio(one[0.90], ann[0.90])} (need >= 1x)"
        add("3", ok3, detail)

        def by_trees(ser: list[dict], system: str, key: str, probe: bool = False) -> dict:
            return {
                s["variant"].get("n_trees"): s.get(key)
                for s in ser
                if s["system"] == system
                and s.get(key) is not None
                and bool(s["variant"].get("probe")) == probe
            }

        a_build = by_trees(s1, "annoy", "build_trees_s")
        o_build = by_trees(s1, OURS, "build_trees_s")
        o_build2 = by_trees(s2, OURS, "build_trees_s")
        # "the same number of trees": the forests both systems built
        built = sorted(set(a_build) & set(o_build))
        ok4, parts = bool(built), []
        for t in built:
            ok, text = _build_verdict(t, a_build[t], o_build[t], o_build2.get(t))
            ok4 &= ok
            parts.append(text)
        # the probe variants' builds add the cells, which annoy has no counterpart of
        c_build = by_trees(s1, OURS, "build_trees_s", probe=True)
        c_build2 = by_trees(s2, OURS, "build_trees_s", probe=True)
        for t in sorted(set(c_build) & set(a_build)):
            parts.append(
                f"with cells ({t}-tree probe index, not counted): n_jobs=1 "
                f"{c_build[t]:.2f} s = {c_build[t] / a_build[t]:.2f}x, n_jobs=2 "
                f"{_fmt(c_build2.get(t), fmt='{:.2f}')} s"
            )
        paired = _paired(results, metric, config)
        if paired is not None:  # builds side by side decide; the tables' jobs are shown beside
            ok4, detail = paired
            table = "; ".join(parts)
            parts = [detail, f"in the tables' jobs (not counted): {table}"] if table else [detail]
        add("4", ok4, "; ".join(parts) or "no data")

        a_file, o_file = by_trees(s1, "annoy", "file_bytes"), by_trees(s1, OURS, "file_bytes")
        o_load = by_trees(s1, OURS, "load_s")
        saved = sorted(set(a_file) & set(o_file))
        ok5, parts = bool(saved) and bool(o_load), []
        for t in saved:
            af, of = a_file[t], o_file[t]
            ok5 &= of <= 0.7 * af
            parts.append(
                f"{t} trees: file {_fmt(of, 1e-6)} vs {af / 1e6:.1f} MB = {of / af:.2f}x"
                " (need <= 0.7x)"
            )
        for t, ls in sorted(o_load.items()):
            ok5 &= ls < 0.010
            parts.append(f"{t} trees: load {ls * 1e3:.2f} ms (need < 10 ms)")
        c_file = by_trees(s1, OURS, "file_bytes", probe=True)
        for t in sorted(set(c_file) & set(a_file)):
            parts.append(
                f"with cells ({t}-tree probe index, not counted): "
                f"{c_file[t] / 1e6:.1f} MB = {c_file[t] / a_file[t]:.2f}x"
            )
        add("5", ok5, "; ".join(parts) or "no data")

        hn = _best_of(s1, 0.90, "hnswlib")
        out.append(
            {
                "target": "6",
                "metric": metric,
                "config": config,
                "status": "INFO",
                "detail": f"batch @0.90 vs hnswlib: {ratio(batch[0.90], hn)}",
            }
        )
    return out


def _paired(results: dict, metric: str, config: str) -> tuple[bool, str] | None:
    """Target 4 from the alternated builds (``paired.py``) of one metric and dtype, or None
    when the run has none."""
    recs = [r for r in results.get("paired", []) if r["metric"] == metric]
    annoy = [r for r in recs if r["system"] == "annoy"]
    ours = {r["threads"]: r for r in recs if r["system"] == OURS and _dtype(r) == config}
    if not annoy or 1 not in ours:
        return None
    a, o1, o2 = annoy[0], ours[1], ours.get(2)
    ab, ob, ob2 = (r.get("build_trees_s") if r else None for r in (a, o1, o2))
    if ab is None or ob is None:
        error = (a.get("error") or o1.get("error") or "?").strip().splitlines()[-1]
        return False, f"alternated builds: no data ({error[:200]})"
    ok, text = _build_verdict(a["variant"]["n_trees"], ab, ob, ob2)
    rounds = len(a["runs_s"])
    return ok, f"alternated builds (fastest of {rounds} round{'s' * (rounds != 1)}), {text}"


def _build_verdict(trees: int, ab: float, ob: float, ob2: float | None) -> tuple[bool, str]:
    """Target 4 for one forest: ours on one thread (``ob``) no slower than annoy's ``ab``, on
    two (``ob2``) at most 0.6x of it."""
    ok = ob <= ab and ob2 is not None and ob2 <= 0.6 * ab
    return ok, (
        f"{trees} trees: annoy {ab:.2f} s, n_jobs=1 {ob:.2f} s = {ob / ab:.2f}x (need <= 1x), "
        f"n_jobs=2 {_fmt(ob2, fmt='{:.2f}')} s = "
        f"{_fmt(None if ob2 is None else ob2 / ab, fmt='{:.2f}')}x (need <= 0.6x)"
    )


def paired_table(results: dict) -> str:
    """Markdown table of the alternated builds: every round's time and the fastest."""
    rows = results.get("paired", [])
    if not rows:
        return ""
    lines = ["| metric | build | threads | fastest s | every round s |", "|---|---|---|---|---|"]
    for r in rows:
        who = f"{r['system']} {r['variant']['n_trees']} trees"
        if r["system"] == OURS:
            who += f", {_dtype(r)}"
        runs = ", ".join(f"{t:.2f}" for t in r["runs_s"]) or "ERROR"
        fastest = _fmt(r.get("build_trees_s"), fmt="{:.2f}")
        lines.append(f"| {r['metric']} | {who} | {r['threads']} | {fastest} | {runs} |")
    return "\n".join(lines)


def _dtype(s: dict) -> str:
    return s["variant"].get("vector_dtype", "float32")


def _configurations(results: dict, metrics: list[str]) -> list[tuple[str, str, list, list]]:
    """(metric, annoy-adapters vector dtype, 1-thread series, 2-thread series): the targets
    are checked per configuration, each with every peer, so no figure mixes two of them."""
    out = []
    for metric in metrics:
        s1, s2 = series(results, metric, 1), series(results, metric, 2)
        ours = sorted({_dtype(s) for s in s1 + s2 if s["system"] == OURS}) or ["float32"]
        for config in ours:
            keep = [
                [s for s in ser if s["system"] != OURS or _dtype(s) == config] for ser in (s1, s2)
            ]
            out.append((metric, config, *keep))
    return out


def scale_table(results: dict) -> str:
    """Markdown table of the synthetic scaling series."""
    rows = results.get("scale", [])
    if not rows:
        return ""
    lines = [
        "| n | system | build s (incl. add) | trees s | q/s | recall@10 | peak RSS MB |"
        " RSS delta MB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(rows, key=lambda r: (r["n_index"], r["system"])):
        label = next(iter(r["labels"].values()))
        if "error" in r:
            lines.append(f"| {r['n_index']:,} | {label} | ERROR | | | | | |")
            continue
        p = r["points"][0] if r["points"] else {}
        lines.append(
            f"| {r['n_index']:,} | {label} | {_fmt(r.get('build_s'), fmt='{:,.2f}')}"
            f" | {_fmt(r.get('build_trees_s'), fmt='{:,.2f}')}"
            f" | {_fmt(p.get('qps'), fmt='{:,.0f}')} | {_fmt(p.get('recall'), fmt='{:.3f}')}"
            f" | {_fmt(r.get('query_peak_rss_mb'), fmt='{:,.0f}')}"
            f" | {_fmt(r.get('peak_rss_delta_mb'), fmt='{:,.0f}')} |"
        )
    return "\n".join(lines)


def target_scope(t: dict) -> str:
    config = t.get("config", "float32")
    return t["metric"] if config == "float32" else f"{t['metric']}, {config} vectors"


def _cpu(meta: dict) -> str:
    """ " (processor)" when the run recorded it (runs before 23 did not)."""
    return f" ({meta['cpu']})" if meta.get("cpu") else ""


def markdown_report(results: dict, png: str | None = None, scale_png: str | None = None) -> str:
    """The whole Markdown report: setup, tables per metric/threads, targets."""
    meta, cfg = results["meta"], results["meta"]["config"]
    data = (
        f"GloVe 6B 50d: {cfg['n_index']:,} indexed, {cfg['n_queries']:,} held-out queries "
        f"(seed {cfg['seed']}), recall@{cfg['k']} against exact ground truth."
        if glove_measured(results)
        else "The synthetic scaling series only (no GloVe jobs)."
    )
    out = [
        f"# Benchmark `{meta['name']}`",
        "",
        f"{data} "
        f"Started {meta['started']}, {meta.get('elapsed_s', 0) / 60:.1f} min, "
        f"{meta['cpu_count']} CPUs{_cpu(meta)}, Python {meta['python']}.",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()) + ".",
        "",
    ]
    if meta.get("partial"):
        out += [
            "**Partial result**: the run stopped before its end; only the jobs it finished "
            "are here, and targets whose jobs are missing read as not met.",
            "",
        ]
    out += [
        "q/s at recall r: best measured point with recall@10 >= r (no interpolation); "
        "(x annoy): ratio to annoy's best one-query-per-call q/s at the same r. "
        "build s: tree building (`build`) for annoy / annoy-adapters, whole build otherwise"
        + (
            f", the fastest of {cfg['build_repeats']} builds. "
            if cfg.get("build_repeats", 1) > 1
            else ". "
        )
        + "load ms: best of 3 repeated loads (the first load in a fresh process in brackets). "
        "Peak RSS: the larger of the build and query processes; delta: above the process "
        "after loading the data; build child: the largest process an n_jobs > 1 build forked "
        "(its peak counts the pages it shares with the build process).",
    ]
    if meta.get("skipped"):
        out += ["", "Skipped: " + ", ".join(f"{k} ({v})" for k, v in meta["skipped"].items())]
    for threads in cfg["threads"]:
        for metric in cfg["metrics"]:
            table = glove_table(results, metric, threads)
            if table:
                out += ["", f"## {metric}, {threads} thread{'s' if threads > 1 else ''}", "", table]
    if png:
        out += ["", f"![recall vs throughput]({png})"]
    pt = paired_table(results)
    if pt:
        out += [
            "",
            "## Alternated builds (target 4)",
            "",
            "Tree building only (`build`), annoy and annoy-adapters in turn in fresh processes, "
            "round after round in a rotated order, so both meet the machine in the same state.",
            "",
            pt,
        ]
    out += ["", "## Targets (issue 4)", ""]
    out += [f"- **{t['status']}** target {t['target']} [{target_scope(t)}]: {t['detail']}"
            for t in results.get("targets", [])]  # fmt: skip
    if not results.get("targets"):  # check_targets checks none without GloVe jobs
        out += ["None checked: this run measured no GloVe jobs."]
    st = scale_table(results)
    if st:
        out += [
            "",
            f"## Scaling: synthetic {cfg['scale_dim']}-d, {cfg['scale_metric']}, 1 thread",
            "",
            f"Fixed knobs: {cfg['scale_n_trees']} trees, search_k={cfg['scale_search_k']}; "
            f"hnswlib ef={cfg['scale_ef']}; {cfg['scale_queries']:,} queries.",
            "",
            st,
        ]
        if scale_png:
            out += ["", f"![scaling]({scale_png})"]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Re-render ``RESULT.json`` as Markdown on stdout (targets re-checked)."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m benchmarks.report RESULT.json", file=sys.stderr)
        return 2
    results = json.loads(Path(argv[0]).read_text())
    results["targets"] = check_targets(results)
    print(markdown_report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
