"""Train the turbofan twin on a C-MAPSS train file, run it cycle by cycle over the test units, report RUL metrics.

Usage::

    python examples/turbofan_engine_degradation/run_turbofan.py --fd FD001 --also FD003 --plot
    python examples/turbofan_engine_degradation/run_turbofan.py --twin out/turbofan/twin_FD001.json  # no training
    python examples/turbofan_engine_degradation/run_turbofan.py --cv 5 --models 1   # tuning, train file only

Data: ``data/turbofan_engine_degradation/`` or ``$TWINGRAPH_CMAPSS_DIR`` (see data/README.md),
or ``--data PATH``. Metrics use the last cycle of each test unit, true RUL capped at 125. ``--cv K``
touches no test file: K folds of train units, each held-out unit scored at every cut like a test unit.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from turbofan_twin import CAP, build_twin, load_twin, phm08_score, rmse, run_twin, train_model

import twingraph as tg
from blocks.ml.window_rul import WindowRUL
from twingraph.datasets import load_cmapss

FIRST_CUT = 30  # shortest cut scored in --cv [cycles] (the shortest FD001 test unit has 31)


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
    table.to_csv(out / f"predictions_{subset}.csv", index=False)
    if plot:
        plot_results(result, table, subset, out)
    return metrics


def cross_validate(data, make_model, folds: int, seed: int, **fit) -> dict:
    """K-fold by train unit: train on the other folds, run the twin over the held-out units, score every cut.

    The twin is causal, so its RUL at cycle ``L`` of a whole unit is what the unit cut after ``L`` cycles
    would end with: one run scores every cut ``L`` in ``[FIRST_CUT, T - 1]`` as a test unit. Each unit
    counts equally (its squared error, error and PHM08 score averaged over its cuts); the score is per
    100 units, comparable with a 100-unit test file. Fold ``k`` trains ``make_model(seed + k)``.
    """
    units = np.array(sorted(data.train["unit"].unique()))
    order = np.random.default_rng(seed).permutation(units)
    frame = data.train.assign(target=data.train_targets(cap=CAP)).sort_values(["unit", "cycle"])
    mse, score, bias = [], [], []
    for k, held in enumerate(np.array_split(order, folds)):
        model = make_model(seed + k)
        train_model(data, model, units=[int(u) for u in units if u not in held], **fit)
        fold = frame[frame["unit"].isin(held)]
        result = run_twin(model, fold)
        true = fold.groupby("unit")["target"]
        for b, unit in enumerate(result["units"]):
            pred = result["rul"][result["valid"][:, b], b][FIRST_CUT - 1:-1]
            cut_true = true.get_group(unit).to_numpy(float)[FIRST_CUT - 1:-1]
            mse.append(rmse(pred, cut_true) ** 2)
            score.append(phm08_score(pred, cut_true) / len(pred))
            bias.append(float(np.mean(pred - cut_true)))
        print(f"fold {k + 1}/{folds} ({len(held)} units): RMSE {np.sqrt(np.mean(mse[-len(held):])):.2f}  "
              f"PHM08 score per 100 {100 * np.mean(score[-len(held):]):.1f}")
    metrics = {"rmse": float(np.sqrt(np.mean(mse))), "score_per_100": float(100 * np.mean(score)),
               "bias": float(np.mean(bias)), "units": len(mse)}
    print(f"{folds}-fold CV on the train units (every cut from cycle {FIRST_CUT}): RMSE {metrics['rmse']:.2f}  "
          f"PHM08 score per 100 {metrics['score_per_100']:.1f}  mean error {metrics['bias']:+.2f}")
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
    parser.add_argument("--models", type=int, default=4, help="ensemble members")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--window", type=int, default=50, help="cycles the network sees")
    parser.add_argument("--alpha", type=float, default=0.1, help="exponential smoothing factor of the sensors")
    parser.add_argument("--low-rul-weight", type=float, default=3.0, help="extra sample weight at RUL 0")
    parser.add_argument("--units", type=int, default=None, help="train on the first N units only (smoke runs)")
    parser.add_argument("--twin", default=None, help="a saved twin (twin_<FD>.json from an earlier run): no training")
    parser.add_argument("--cv", type=int, default=None, metavar="K", help="K-fold CV on the train file, no test")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    data = load_cmapss(args.fd, args.data)

    def make_model(seed: int = args.seed) -> WindowRUL:
        return WindowRUL(window=args.window, alpha=args.alpha, n_models=args.models, seed=seed, name="rul")

    fit = {"epochs": args.epochs, "low_rul_weight": args.low_rul_weight}
    if args.cv is not None:
        return cross_validate(data, make_model, args.cv, args.seed, progress=False, **fit)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.twin is not None:
        model = load_twin(args.twin)
        metrics = {}
    else:
        units = None if args.units is None else sorted(data.train["unit"].unique())[: args.units]
        model = make_model()
        start = time.perf_counter()
        train_model(data, model, units=units, progress=True, **fit)
        metrics = {"train_s": time.perf_counter() - start}
        print(f"trained {args.models} member(s) on {args.fd} in {metrics['train_s']:.0f} s")
        build_twin(model).save(out / f"twin_{args.fd}.json")
    for subset in [args.fd, *[s for s in args.also if s != args.fd]]:
        try:
            metrics[subset] = evaluate(model, subset, args.data, out, args.plot)
        except tg.TwinGraphError as exc:  # a missing further subset is reported, not fatal
            if subset == args.fd:
                raise
            print(f"{subset}: {exc}")
    return metrics


if __name__ == "__main__":
    main()
