"""Plots of a benchmark result (matplotlib, headless Agg backend)."""

from __future__ import annotations

from pathlib import Path

from benchmarks.report import series


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no display on CI / servers
    import matplotlib.pyplot as plt

    return plt


def plot_recall_qps(results: dict, path: Path) -> None:
    """Recall@10 (x) against queries/s (log y): one panel per metric x threads."""
    plt = _pyplot()
    cfg = results["meta"]["config"]
    rows, cols = cfg["threads"], cfg["metrics"]
    fig, axes = plt.subplots(
        len(rows), len(cols), figsize=(6.5 * len(cols), 4.5 * len(rows)), squeeze=False
    )
    for i, threads in enumerate(rows):
        for j, metric in enumerate(cols):
            ax = axes[i][j]
            for s in series(results, metric, threads):
                pts = sorted(s["points"], key=lambda p: p["recall"])
                if not pts:
                    continue
                ours = s["system"] == "annoy-adapters"
                ax.plot(
                    [p["recall"] for p in pts],
                    [p["qps"] for p in pts],
                    marker="o" if ours else ".",
                    linewidth=2.0 if ours else 1.0,
                    linestyle="-" if s["mode"] == "batch" else "--",
                    label=s["label"],
                )
            for lv in (0.90, 0.95, 0.99):
                ax.axvline(lv, color="grey", linewidth=0.5, linestyle=":")
            ax.set_yscale("log")
            ax.set_xlabel("recall@10")
            ax.set_ylabel("queries / s")
            ax.set_title(f"{metric}, {threads} thread{'s' if threads > 1 else ''}")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=7, loc="lower left")
    fig.suptitle(
        f"GloVe 6B 50d: {cfg['n_index']:,} indexed, {cfg['n_queries']:,} queries"
        " (up and right is better)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_scaling(results: dict, path: Path) -> None:
    """Build time, queries/s and RSS delta against n (log-log), per system."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    by_system: dict[str, list[dict]] = {}
    for r in results["scale"]:
        if "error" not in r and r["points"]:
            by_system.setdefault(next(iter(r["labels"].values())), []).append(r)
    panels = (
        ("build time incl. adding items (s)", lambda r: r.get("build_s")),
        ("queries / s", lambda r: r["points"][0]["qps"]),
        ("peak RSS above data (MB)", lambda r: max(r.get("peak_rss_delta_mb") or 0.0, 0.1)),
    )
    for ax, (title, get) in zip(axes, panels, strict=True):
        for label, rs in by_system.items():
            rs = sorted(rs, key=lambda r: r["n_index"])
            ax.plot([r["n_index"] for r in rs], [get(r) for r in rs], marker="o", label=label)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("indexed points n")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=7)
    cfg = results["meta"]["config"]
    fig.suptitle(f"Synthetic {cfg['scale_dim']}-d scaling, {cfg['scale_metric']}, 1 thread")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
