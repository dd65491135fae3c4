"""Train the turbofan twin on a C-MAPSS train file, run it cycle by cycle over the test units, report RUL metrics.

Usage::

    python examples/turbofan_engine_degradation/run_turbofan.py --fd FD001 --also FD003 --plot

Data: ``data/turbofan_engine_degradation/`` or ``$TWINGRAPH_CMAPSS_DIR`` (see data/README.md),
or ``--data PATH``. Metrics use the last cycle of each test unit, true RUL capped at 125.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from turbofan_twin import CAP, phm08_score, rmse, run_twin, train_model

from blocks.ml.window_rul import WindowRUL
from twingraph import TwinGraphError
from twingraph.datasets import load_cmapss


def evaluate(model: WindowRUL, subset: str, path, out: Path, plot: bool) -> dict | None:
    """Run the twin over ``subset``'s test units; write predictions (and plots); return the metrics."""
    data = load_cmapss(subset, path)
    if data.test is None:
        print(f"{subset}: no test file, skipped.")
        return None
    result = run_twin(model, data.test, progress=True)
    last = result["rul"][-1]
    table = pd.DataFrame({"unit": result["units"], "cycles": result["lengths"], "rul_pred": last})
    metrics = None
    if data.rul is not None:
        table["rul_true"] = data.rul.loc[result["units"], "rul"].to_numpy(float)
        true = np.minimum(table["rul_true"].to_numpy(), CAP)
        table["rul_true_capped"] = true
        metrics = {"subset": subset, "rmse": rmse(last, true), "score": phm08_score(last, true), "units": len(true)}
        print(f"{subset} test ({len(true)} units, last cycle, true RUL capped at {CAP}): "
              f"RMSE {metrics['rmse']:.2f}  PHM08 score {metrics['score']:.1f}")
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / f"predictions_{subset}.csv", index=False)
    if plot:
        plot_results(result, table, subset, out)
    return metrics


def plot_results(result: dict, table: pd.DataFrame, subset: str, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    picks = np.argsort(result["lengths"])[np.linspace(0, len(result["units"]) - 1, 4).astype(int)]
    fig, axes = plt.subplots(2, 4, figsize=(16, 6), sharex="col")
    for col, b in enumerate(picks):
        rows = result["valid"][:, b]
        cycles = np.arange(1, rows.sum() + 1)
        axes[0, col].plot(cycles, result["hi"][rows, b])
        axes[0, col].set(title=f"{subset} unit {result['units'][b]}", ylabel="HI", ylim=(-0.05, 1.05))
        axes[1, col].plot(cycles, result["rul"][rows, b], label="twin")
        if "rul_true" in table:
            true_curve = table.loc[b, "rul_true"] + cycles[::-1] - 1
            axes[1, col].plot(cycles, np.minimum(true_curve, CAP), "--", label="true (capped)")
        axes[1, col].set(xlabel="cycle", ylabel="RUL [cycles]")
        axes[1, col].legend()
    fig.tight_layout()
    fig.savefig(out / f"hi_rul_{subset}.png", dpi=100)
    plt.close(fig)
    if "rul_true_capped" in table:
        fig, ax = plt.subplots(figsize=(5, 5))
        ax.scatter(table["rul_true_capped"], table["rul_pred"], s=12)
        ax.plot([0, CAP], [0, CAP], "k--", lw=1)
        ax.set(xlabel="true RUL (capped) [cycles]", ylabel="predicted RUL [cycles]", title=f"{subset}: last cycle")
        fig.tight_layout()
        fig.savefig(out / f"pred_vs_true_{subset}.png", dpi=100)
        plt.close(fig)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fd", default="FD001", help="subset to train on and test (default FD001)")
    parser.add_argument("--also", nargs="*", default=["FD003"], help="further test subsets, not trained on")
    parser.add_argument("--data", default=None, help="folder with the C-MAPSS text files")
    parser.add_argument("--out", default="out/turbofan", help="output folder")
    parser.add_argument("--plot", action="store_true", help="save PNG plots")
    parser.add_argument("--models", type=int, default=5, help="ensemble members")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--units", type=int, default=None, help="train on the first N units only (smoke runs)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    data = load_cmapss(args.fd, args.data)
    units = None if args.units is None else sorted(data.train["unit"].unique())[: args.units]
    model = WindowRUL(n_models=args.models, seed=args.seed, name="rul")
    start = time.perf_counter()
    train_model(data, model, units=units, epochs=args.epochs, progress=True)
    train_s = time.perf_counter() - start
    print(f"trained {args.models} member(s) on {args.fd} in {train_s:.0f} s")
    out = Path(args.out)
    metrics = {"train_s": train_s}
    for subset in [args.fd, *[s for s in args.also if s != args.fd]]:
        try:
            metrics[subset] = evaluate(model, subset, args.data, out, args.plot)
        except TwinGraphError as exc:  # a missing further subset is reported, not fatal
            if subset == args.fd:
                raise
            print(f"{subset}: {exc}")
    return metrics


if __name__ == "__main__":
    main()
