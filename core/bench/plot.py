"""`anyaccel bench --plot FILE`: one panel per op, median time per kernel across the sweep (log scale)."""

from __future__ import annotations

from collections.abc import Sequence

from .kernels import KernelTiming


def write_plot(timings: Sequence[KernelTiming], path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display is needed or used
    import matplotlib.pyplot as plt

    ops = sorted({t.op for t in timings if t.median_us})
    if not ops:
        raise ValueError(f"nothing to plot into {path}: no kernel produced a timing")
    cols = min(3, len(ops))
    rows = -(-len(ops) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.5 * cols, 3.8 * rows), squeeze=False)
    for ax, op in zip(axes.flat, ops, strict=False):
        mine = [t for t in timings if t.op == op and t.median_us]
        shapes = list(dict.fromkeys(t.shape for t in mine))
        for kernel in dict.fromkeys(t.kernel for t in mine):
            by_shape = {t.shape: t.median_us for t in mine if t.kernel == kernel}
            xs = [i for i, s in enumerate(shapes) if s in by_shape]
            ax.plot(xs, [by_shape[shapes[i]] for i in xs], marker="o", label=kernel)
        ax.set_title(op)
        ax.set_yscale("log")
        ax.set_ylabel("median time (us)")
        ax.set_xticks(range(len(shapes)), shapes, rotation=30, ha="right", fontsize=7)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(ops) :]:
        ax.set_visible(False)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
