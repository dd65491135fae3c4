"""Train the hybrid turbofan twin on a C-MAPSS subset, run the test units through it cycle by cycle, report metrics.

Usage::

    python examples/turbofan_engine_degradation/run_turbofan.py --fd FD001 --also FD003 --plot
    python examples/turbofan_engine_degradation/run_turbofan.py --fd FD004 --cv 5        # train units only
    python examples/turbofan_engine_degradation/run_turbofan.py --twin out/turbofan/twin_FD004.json \\
        --test PATH/test.txt --rul PATH/RUL.txt                                          # a saved twin, no training

Data: ``data/turbofan_engine_degradation/`` or ``$TWINGRAPH_CMAPSS_DIR`` (see data/README.md), or ``--data PATH``.
Metrics use the last cycle of each test unit, true RUL capped at 125. ``--cv K`` touches no test file: K folds
of train units, the whole twin trained on K - 1 of them, every held-out unit scored at every cycle, each
cycle weighted by its probability as a test-like cut (the expected last-cycle metrics).
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from turbofan_twin import (
    CAP,
    Config,
    cross_fitted_cuts,
    cut_weights,
    life_targets,
    load_twin,
    run_twin,
    score,
    train_twin,
    weighted_scores,
)

import twingraph as tg
from twingraph.datasets import load_cmapss
from twingraph.datasets.cmapss import COLUMNS

HEALTHY_RUL = 60  # a fused RUL at or above this [cycles] counts as "predicted healthy" (the OOD check)
FAN_FAULT_RUL = 60  # units failing within this many cycles and predicted healthy are the fault-like ones [cycles]


def read_table(path) -> pd.DataFrame:
    """A C-MAPSS text file (26 whitespace-separated columns, no header) given by path."""
    frame = pd.read_csv(path, sep=r"\s+", header=None, engine="python")
    if frame.shape[1] != len(COLUMNS):
        raise tg.TwinGraphError(f"{path} has {frame.shape[1]} columns; a C-MAPSS file has {len(COLUMNS)}.")
    frame.columns = COLUMNS
    return frame.astype({"unit": int, "cycle": int})


def last_cycle_table(result: dict) -> pd.DataFrame:
    """Per unit: cycles, fused RUL with its interval, data-driven and model RUL, detection cycle, OOD flag."""
    rows = {key: result[key][-1] for key in ("rul", "rul_lower", "rul_upper", "rul_data", "rul_model")}
    valid = result["valid"]
    alarm = np.where(valid, np.nan_to_num(result["alarm"]) > 0, False)
    first = np.where(alarm.any(axis=0), alarm.argmax(axis=0) - valid.argmax(axis=0) + 1, -1)
    ood = np.where(valid, np.nan_to_num(result["ood"]) > 0, False).any(axis=0)
    return pd.DataFrame({"unit": result["units"], "cycles": result["lengths"], **rows, "detected_at": first,
                         "ood": ood})


def evaluate(graph: tg.Graph, frame: pd.DataFrame, true_rul, name: str, out: Path, plot: bool, log: Path) -> dict:
    """Run the twin over the units of ``frame``; write ``predictions_<name>.csv`` (and plots); return the metrics."""
    start = time.perf_counter()
    result = run_twin(graph, frame, progress=True)
    table = last_cycle_table(result)
    metrics = {"name": name, "run_s": time.perf_counter() - start}
    if true_rul is not None:
        true = np.asarray(true_rul, float)
        table["rul_true"] = true
        quantiles = graph.blocks["fuse"].quantiles(table["rul"].to_numpy())
        metrics.update(score(table["rul"], table["rul_lower"], table["rul_upper"], quantiles, true))
        fault_like = (true < FAN_FAULT_RUL) & (table["rul"].to_numpy() >= HEALTHY_RUL)
        metrics["fault_like"] = int(fault_like.sum())
        metrics["fault_like_flagged"] = float(table["ood"][fault_like].mean()) if fault_like.any() else float("nan")
        metrics["ood_share"] = float(table["ood"].mean())
        with open(log, "a") as f:  # every scoring of a file of true RUL is counted
            f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')},{name},{metrics['rmse']:.3f}\n")
        print(f"{name} ({len(true)} units, last cycle, true RUL capped at {CAP}): RMSE {metrics['rmse']:.2f}  "
              f"PHM08 {metrics['phm08']:.1f}  coverage {metrics['coverage']:.2f}  width {metrics['width']:.1f}  "
              f"alpha-lambda {metrics['alpha_lambda']:.2f}  CRPS {metrics['crps']:.2f}  OOD {metrics['ood_share']:.2f}")
    table.to_csv(out / f"predictions_{name}.csv", index=False)
    if plot:
        plot_results(result, table, name, out)
    return metrics


def cross_validate(frame: pd.DataFrame, config: Config, folds: int, seed: int) -> dict:
    """K-fold by unit: train the twin on the other folds, run the held-out units, score every test-like cut.

    The twin is causal: its outputs at cycle ``L`` of a whole unit are what the unit cut after ``L``
    cycles ends with, so one run scores every cut; cycle ``L`` is weighted by its probability as a cut
    (:func:`~turbofan_twin.cut_weights`), which gives each unit weight 1. The metrics are the expected
    last-cycle metrics of a test file drawn like the C-MAPSS ones; the PHM08 score is per 100 units.
    """
    from tqdm.auto import tqdm

    units = np.random.default_rng(seed).permutation(np.sort(frame["unit"].unique()))
    rows = []
    for k, held in enumerate(tqdm(np.array_split(units, folds), desc="CV folds")):
        graph, _ = train_twin(frame[~frame["unit"].isin(held)], config, progress=False)
        result = run_twin(graph, frame[frame["unit"].isin(held)])
        fuse = graph.blocks["fuse"]
        for b, length in enumerate(result["lengths"]):
            v = result["valid"][:, b]
            pred = result["rul"][v, b]
            rows.append(pd.DataFrame({"fold": k, "unit": result["units"][b], "cut": np.arange(1, length + 1),
                                      "weight": cut_weights(length), "true": life_targets(length, CAP),
                                      "rul": pred, "rul_lower": result["rul_lower"][v, b],
                                      "rul_upper": result["rul_upper"][v, b], "q": list(fuse.quantiles(pred))}))
    cuts = pd.concat(rows, ignore_index=True)
    metrics = weighted_scores(cuts[cuts["weight"] > 0])
    print(f"{folds}-fold CV ({metrics['units']} train units, expected over test-like cuts): "
          f"RMSE {metrics['rmse']:.2f}  PHM08 per 100 units {metrics['phm08']:.1f}  coverage {metrics['coverage']:.2f}"
          f"  width {metrics['width']:.1f}  alpha-lambda {metrics['alpha_lambda']:.2f}  CRPS {metrics['crps']:.2f}")
    return metrics


def plot_results(result: dict, table: pd.DataFrame, name: str, out: Path) -> None:
    """HI trajectories with detection cycles, RUL fan charts against the truth, predicted vs true RUL."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    picks = np.argsort(result["lengths"])[np.linspace(0, len(result["units"]) - 1, 4).astype(int)]
    fig, axes = plt.subplots(2, 4, figsize=(16, 6.5), sharex="col")
    for col, b in enumerate(picks):
        rows = result["valid"][:, b]
        cycles = np.arange(1, rows.sum() + 1)
        ax = axes[0, col]
        ax.plot(cycles, result["hi"][rows, b], label="HI (health filter)")
        if table.loc[b, "detected_at"] > 0:
            ax.axvline(table.loc[b, "detected_at"], color="r", ls=":", label="detection")
        ax.set(title=f"{name} unit {result['units'][b]}", ylabel="HI", ylim=(-0.05, 1.05))
        ax.legend(loc="lower left", fontsize=8)
        ax = axes[1, col]
        ax.fill_between(cycles, result["rul_lower"][rows, b], result["rul_upper"][rows, b], alpha=0.3,
                        label="90 % interval")
        ax.plot(cycles, result["rul"][rows, b], label="fused RUL")
        if "rul_true" in table:
            ax.plot(cycles, np.minimum(table.loc[b, "rul_true"] + cycles[::-1] - 1, CAP), "k--", label="true (capped)")
        ax.set(xlabel="cycle", ylabel="RUL [cycles]")
        ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    fig.savefig(out / f"hi_rul_{name}.png", dpi=90)
    plt.close(fig)
    if "rul_true" in table:
        true = np.minimum(table["rul_true"], CAP)
        fig, ax = plt.subplots(figsize=(5.5, 5))
        ax.errorbar(true, table["rul"], yerr=[table["rul"] - table["rul_lower"], table["rul_upper"] - table["rul"]],
                    fmt="o", ms=3, alpha=0.6, elinewidth=0.6)
        ax.plot([0, CAP], [0, CAP], "k--", lw=1)
        ax.set(xlabel="true RUL (capped) [cycles]", ylabel="predicted RUL [cycles]", title=f"{name}: last cycle")
        fig.tight_layout()
        fig.savefig(out / f"pred_vs_true_{name}.png", dpi=90)
        plt.close(fig)


def write_cut(frame: pd.DataFrame, test_path: Path, rul_path: Path, seed: int = 0) -> None:
    """A test file of training units cut like the C-MAPSS test files, and its RUL file (for ``--twin`` runs)."""
    rng = np.random.default_rng(seed)
    parts, rul = [], []
    for _, unit in frame.sort_values(["unit", "cycle"]).groupby("unit"):
        length = len(unit)
        cut = int(rng.choice(np.arange(1, length + 1), p=cut_weights(length)))
        parts.append(unit.iloc[:cut])
        rul.append(length - cut)
    np.savetxt(test_path, pd.concat(parts)[COLUMNS].to_numpy(), fmt=["%d", "%d"] + ["%.4f"] * 24)
    np.savetxt(rul_path, rul, fmt="%d")


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fd", default="FD001", help="subset to train on and test (default FD001)")
    parser.add_argument("--also", nargs="*", default=[], help="further test subsets run through this twin")
    parser.add_argument("--data", default=None, help="folder with the C-MAPSS text files")
    parser.add_argument("--out", default="out/turbofan", help="output folder")
    parser.add_argument("--plot", action="store_true", help="save PNG plots")
    parser.add_argument("--twin", default=None, help="a saved twin (twin_<FD>.json of an earlier run): no training")
    parser.add_argument("--test", default=None, help="with --twin: a test file given by path")
    parser.add_argument("--rul", default=None, help="with --test: its RUL file")
    parser.add_argument("--cv", type=int, default=None, metavar="K", help="K-fold CV on the train units, no test")
    parser.add_argument("--no-test", action="store_true", help="train and report the cross-fitted CV only")
    parser.add_argument("--units", type=int, default=None, help="use the first N train units only (smoke runs)")
    parser.add_argument("--models", type=int, default=Config.n_models, help="WindowRUL members (cross-fitted)")
    parser.add_argument("--epochs", type=int, default=Config.epochs)
    parser.add_argument("--window", type=int, default=Config.window, help="cycles the network sees")
    parser.add_argument("--channels", default=",".join(map(str, Config.channels)), help="conv channels, e.g. 32,64")
    parser.add_argument("--sample-fraction", type=float, default=Config.sample_fraction,
                        help="share of the training windows drawn per epoch")
    parser.add_argument("--mc-samples", type=int, default=Config.mc_samples, help="Monte Carlo RUL samples")
    parser.add_argument("--mc-period", type=int, default=Config.mc_period, help="cycles between Monte Carlo runs")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = out / "test_scorings.csv"
    config = Config(window=args.window, channels=tuple(int(c) for c in args.channels.split(",")),
                    n_models=args.models, epochs=args.epochs, sample_fraction=args.sample_fraction,
                    mc_samples=args.mc_samples, mc_period=args.mc_period, seed=args.seed)
    metrics = {}
    if args.twin is not None:
        if args.test is None:
            raise SystemExit("--twin needs --test PATH (and --rul PATH to score it).")
        graph = load_twin(args.twin)
        name = Path(args.test).stem
        true = None if args.rul is None else np.loadtxt(args.rul, ndmin=1)
        metrics[name] = evaluate(graph, read_table(args.test), true, name, out, args.plot, log)
        return metrics
    data = load_cmapss(args.fd, args.data)
    train = data.train if args.units is None else data.train[data.train["unit"].isin(
        sorted(data.train["unit"].unique())[: args.units])]
    if args.cv is not None:
        start = time.perf_counter()
        metrics["cv"] = cross_validate(train, config, args.cv, args.seed)
        metrics["cv"]["seconds"] = time.perf_counter() - start
        pd.DataFrame([{"subset": args.fd, "protocol": f"{args.cv}-fold CV", **metrics["cv"]}]).to_csv(
            out / f"cv_{args.fd}.csv", index=False)
        return metrics
    start = time.perf_counter()
    graph, info = train_twin(train, config, progress=True)
    metrics["train_s"] = time.perf_counter() - start
    print(f"trained the {args.fd} twin in {metrics['train_s']:.0f} s")
    cuts = cross_fitted_cuts(info["cuts"])
    cv = weighted_scores(cuts[cuts["weight"] > 0])
    metrics["cross-fitted CV"] = {"name": f"{args.fd} train, cross-fitted CV", **cv}
    print("{name} (expected over test-like cuts): RMSE {rmse:.2f}  PHM08 per 100 {phm08:.1f}  coverage {coverage:.2f}  "
          "width {width:.1f}  alpha-lambda {alpha_lambda:.2f}  CRPS {crps:.2f}".format(**metrics["cross-fitted CV"]))
    graph.save(out / f"twin_{args.fd}.json")
    for subset in [] if args.no_test else [args.fd, *[s for s in args.also if s != args.fd]]:
        other = data if subset == args.fd else load_cmapss(subset, args.data)
        if other.test is None:
            print(f"{subset}: no test file, skipped.")
            continue
        true = None if other.rul is None else other.rul.sort_index()["rul"].to_numpy(float)
        metrics[subset] = evaluate(graph, other.test, true, subset, out, args.plot, log)
    table = pd.DataFrame([{"twin": args.fd, **m} for k, m in metrics.items() if isinstance(m, dict)])
    table.to_csv(out / f"metrics_{args.fd}.csv", index=False)
    (out / f"metrics_{args.fd}.json").write_text(json.dumps(metrics, indent=1, default=float))
    return metrics


if __name__ == "__main__":
    main()
