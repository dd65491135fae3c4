"""One pump streamed online: microseconds per ``twin.step`` beside a minimal filterpy twin doing the same math.

Run: ``python benchmarks/bench_online.py [--steps N] [--rounds R]``. Prints one table.

The twin is the README's ``TwinSystem`` at B = 1: ``PumpLike`` + ``EKF``
estimating the efficiency + the normalised residual + ``CUSUM`` +
``ParameterHealth`` + ``RUL`` (window 50), and the same twin without its RUL.
Each is stepped one sample at a time over a pump whose efficiency wears from
0.9 to 0.62, and timed per step (median and 99th percentile).

The reference is what a filterpy user would write for the same twin, in
plain Python beside this file, with nothing from twingraph on its path: a
``filterpy.kalman.ExtendedKalmanFilter`` over ``[ω, q, η]`` whose
prediction is one RK4 step of the pump's equations in Python floats, ``F``
by central differences of that step (the step of ``ε^(1/3) (1 + |z|)`` the
EKF block uses), ``H = [0 1 0]``, filterpy's Joseph-form update; then the
residual ``ν / √S``, the two-sided CUSUM, the health indicator, and, in the
"with RUL" line, the RUL block's line fit refitted over the window each tick
with NumPy (slope and intercept by least squares, variances inflated for the
residuals' lag-1 autocorrelation, the delta-method band). Before timing, both
run the same samples and the benchmark asserts that they give the same
efficiency, covariance, CUSUM score, health indicator and RUL.

Timing: ``R`` rounds, each stepping every twin through ``N`` fresh samples
after a warm-up, in turn (interleaved, so that a busy machine slows them
alike); the table gives, per twin, the median over rounds of each round's
median and 99th percentile, and the ratio of medians taken within each
round. Threads: whatever NumPy uses by default (the arrays are 3 × 3).
"""

import argparse
import math
import time
from collections import deque

import numpy as np
from filterpy.kalman import ExtendedKalmanFilter
from scipy.stats import norm

from blocks import TwinSystem
from blocks.anomaly import CUSUM
from blocks.estimation import EKF
from blocks.health import RUL, ParameterHealth
from blocks.physics import PumpLike

DT, VOLTAGE, NOISE = 0.05, 12.0, 1e-6  # tick [s], motor voltage [V], flow noise sd [m3/s]
Q_PARAMS, P0_PARAMS = 1e-6, 0.1
CUSUM_K, CUSUM_H = 1.0, 8.0
NOMINAL, FAILED = 1.0, 0.6
WINDOW, MIN_SAMPLES, CONFIDENCE = 50, 10, 0.95
FD_STEP = np.finfo(float).eps ** (1 / 3)
# PumpLike's defaults
K, R, J, FRICTION, C_T, C_Q, TAU_Q = 0.05, 1.0, 1e-3, 1e-4, 2.5e-6, 5e-6, 0.5


def twin(with_rul: bool) -> TwinSystem:
    """The README twin (without its RUL block when ``with_rul`` is False), history bounded as in the README."""
    system = TwinSystem(
        physics=PumpLike(),
        estimator=EKF(estimate=("efficiency",), q=0.0, q_params=Q_PARAMS, r=NOISE**2, p0=0.0, p0_params=P0_PARAMS),
        anomaly=CUSUM(k=CUSUM_K, h=CUSUM_H),
        health=ParameterHealth(param="efficiency", nominal=NOMINAL, failed=FAILED),
        rul=RUL(window=WINDOW, min_samples=MIN_SAMPLES, confidence=CONFIDENCE) if with_rul else None,
        dt=DT,
    )
    system.initialize(x0=[0.0, 0.0])
    return system


def measurements(steps: int, seed: int = 0) -> np.ndarray:
    """The flow of a pump whose efficiency wears linearly from 0.9 to 0.62 over ``steps`` ticks, with noise."""
    truth = PumpLike(efficiency=0.9)
    x, p = truth.initial_state(1), truth.batch_params(1)
    u = np.full((1, 1), VOLTAGE)
    rng = np.random.default_rng(seed)
    flow = np.empty(steps)
    for k in range(steps):
        p["efficiency"][0] = 0.9 - 0.28 * k / steps
        flow[k] = truth.observe(x, u, p)[0, 0] + NOISE * rng.normal()
        x = truth.advance(x, u, k * DT, DT, p)
    return flow


def pump_rates(omega: float, q: float, eta: float, v: float) -> tuple[float, float]:
    current = (v - K * omega) / R
    return (K * current - FRICTION * omega - C_T * omega * abs(omega)) / J, (eta * C_Q * omega - q) / TAU_Q


def rk4(z: np.ndarray, v: float) -> np.ndarray:
    """One RK4 step of ``[ω, q, η]`` (η held), as a user writes it for three states."""
    omega, q, eta = z
    h = DT
    a1, b1 = pump_rates(omega, q, eta, v)
    a2, b2 = pump_rates(omega + h / 2 * a1, q + h / 2 * b1, eta, v)
    a3, b3 = pump_rates(omega + h / 2 * a2, q + h / 2 * b2, eta, v)
    a4, b4 = pump_rates(omega + h * a3, q + h * b3, eta, v)
    return np.array([omega + h / 6 * (a1 + 2 * a2 + 2 * a3 + a4), q + h / 6 * (b1 + 2 * b2 + 2 * b3 + b4), eta])


def rk4_jacobian(z: np.ndarray, v: float) -> np.ndarray:
    """``∂ rk4(z) / ∂z`` by central differences."""
    columns = []
    for i in range(3):
        step = FD_STEP * (1.0 + abs(z[i]))
        up, down = z.copy(), z.copy()
        up[i] += step
        down[i] -= step
        columns.append((rk4(up, v) - rk4(down, v)) / (2 * step))
    return np.array(columns).T


class PumpEKF(ExtendedKalmanFilter):
    def predict_x(self, u=0):
        self.x = rk4(self.x[:, 0], VOLTAGE)[:, None]


H = np.array([[0.0, 1.0, 0.0]])


def h_jacobian(x):
    return H


def hx(x):
    return x[1:2]


def line_rul(window: deque, z: float) -> tuple[float, float, float]:
    """The RUL block's linear fit, refitted over the window: ``rul, lower, upper`` [s] (``inf``: no crossing)."""
    n = len(window)
    if n < MIN_SAMPLES:
        return math.inf, math.inf, math.inf
    g = np.array(window)
    tau = DT * np.arange(1 - n, 1)  # the samples' ages, 0 now
    tau_bar = tau.mean()
    d = tau - tau_bar
    s_tt = d @ d
    b = d @ g / s_tt
    a = g.mean() - b * tau_bar
    r = g - a - b * tau
    sum_sq = r @ r
    rho = min(max(r[1:] @ r[:-1] / sum_sq, 0.0), 0.99) if sum_sq > 0 else 0.0
    sigma2 = sum_sq / (n - 2) * (1 + rho) / (1 - rho)
    var_b = sigma2 / s_tt
    var_a, cov_ab = sigma2 * (1 / n + tau_bar**2 / s_tt), -sigma2 * tau_bar / s_tt
    if a <= 0.0:  # at or below the threshold 0
        return 0.0, 0.0, 0.0
    if not -b > z * math.sqrt(var_b):  # not falling by more than z sd: no crossing
        return math.inf, math.inf, math.inf
    rul = -a / b
    sd = math.sqrt(max(var_a + rul**2 * var_b + 2 * rul * cov_ab, 0.0)) / abs(b)
    return rul, max(rul - z * sd, 0.0), rul + z * sd


class FilterpyTwin:
    """The reference: filterpy's EKF, then residual, CUSUM, health indicator and (optionally) the RUL fit."""

    def __init__(self, with_rul: bool) -> None:
        self.with_rul = with_rul
        self.ekf = PumpEKF(dim_x=3, dim_z=1)
        self.ekf.x = np.array([[0.0], [0.0], [1.0]])
        self.ekf.P = np.diag([0.0, 0.0, P0_PARAMS])
        self.ekf.Q = np.diag([0.0, 0.0, Q_PARAMS])
        self.ekf.R = np.array([[NOISE**2]])
        self.high = self.low = 0.0
        self.window = deque(maxlen=WINDOW)
        self.z = float(norm.ppf((1 + CONFIDENCE) / 2))

    def step(self, flow: float) -> tuple:
        ekf = self.ekf
        ekf.update(np.array([[flow]]), h_jacobian, hx)
        eta, p_eta = ekf.x[2, 0], ekf.P[2, 2]
        residual = ekf.y[0, 0] / math.sqrt(ekf.S[0, 0])
        self.high = max(0.0, self.high + residual - CUSUM_K)
        self.low = max(0.0, self.low - residual - CUSUM_K)
        score = max(self.high, self.low)
        alarm = score > CUSUM_H
        if alarm:
            self.high = self.low = 0.0
        hi = min(max((eta - FAILED) / (NOMINAL - FAILED), 0.0), 1.0)
        rul = (math.inf, math.inf, math.inf)
        if self.with_rul:
            self.window.append(hi)
            rul = line_rul(self.window, self.z)
        ekf.F = rk4_jacobian(ekf.x[:, 0], VOLTAGE)
        ekf.predict()
        return eta, p_eta, score, alarm, hi, rul


def ours(system: TwinSystem, flow: float) -> tuple:
    result = system.step(u=VOLTAGE, measurement=flow)
    rul = (math.inf,) * 3 if result.rul is None else (float(result.rul), float(result.rul_lower),
                                                       float(result.rul_upper))
    return (float(result.params[0]), float(result.params_std[0]) ** 2, float(result.anomaly[0]), bool(result.alarm[0]),
            float(result.health_indicator), rul)


def check(steps: int) -> None:
    """Both twins on the same samples: the same estimates, scores, indicators and RULs."""
    flow = measurements(steps, seed=1)
    for with_rul in (True, False):
        a, b = twin(with_rul), FilterpyTwin(with_rul)
        finite = 0
        for value in flow:
            (eta, var, score, alarm, hi, rul), (eta_ref, var_ref, score_ref, alarm_ref, hi_ref, rul_ref) = (
                ours(a, value), b.step(value))
            assert math.isclose(eta, eta_ref, rel_tol=1e-6), (eta, eta_ref)
            assert math.isclose(var, var_ref, rel_tol=1e-4, abs_tol=1e-12), (var, var_ref)
            assert math.isclose(score, score_ref, rel_tol=1e-5, abs_tol=1e-6) and alarm == alarm_ref
            assert math.isclose(hi, hi_ref, rel_tol=1e-5, abs_tol=1e-9)
            for x, y in zip(rul, rul_ref, strict=True):
                assert (x == y == math.inf) or math.isclose(x, y, rel_tol=1e-3, abs_tol=1e-3), (rul, rul_ref)
            finite += math.isfinite(rul[0])
        assert finite > steps // 2 or not with_rul, finite  # the RULs compared are mostly finite


def time_steps(step, flow: np.ndarray) -> np.ndarray:
    """Microseconds per call of ``step(value)`` over ``flow``."""
    times = np.empty(len(flow))
    clock = time.perf_counter
    for k, value in enumerate(flow):
        start = clock()
        step(value)
        times[k] = clock() - start
    return times * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5_000, help="timed steps per round (default 5,000)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--warmup", type=int, default=500, help="untimed steps first (default 500)")
    args = parser.parse_args()
    check(1_500)
    total = args.warmup + args.steps
    flow = measurements(total)
    lines = {
        "twingraph TwinSystem, with RUL": lambda: twin(True),
        "filterpy twin, with RUL fit": lambda: FilterpyTwin(True),
        "twingraph TwinSystem, no RUL": lambda: twin(False),
        "filterpy twin, no RUL": lambda: FilterpyTwin(False),
    }
    results = {name: [] for name in lines}
    for _ in range(args.rounds):
        for name, build in lines.items():
            system = build()
            if isinstance(system, TwinSystem):
                def step(value, system=system):
                    system.step(u=VOLTAGE, measurement=value)
            else:
                step = system.step
            for value in flow[: args.warmup]:
                step(value)
            results[name].append(time_steps(step, flow[args.warmup :]))
    median = {name: np.median([np.median(t) for t in times]) for name, times in results.items()}
    p99 = {name: np.median([np.percentile(t, 99) for t in times]) for name, times in results.items()}
    ratio = {
        name: np.median([np.median(t) / np.median(results[ref][i]) for i, t in enumerate(times)])
        for name, times in results.items()
        for ref in ["filterpy twin, with RUL fit" if "with RUL" in name else "filterpy twin, no RUL"]
    }
    print(f"One pump online, B = 1: µs per step, {args.rounds} interleaved rounds of {args.steps:,} steps "
          f"(after {args.warmup} warm-up); results checked equal first\n")
    print(f"{'twin':34s} {'median':>8s} {'p99':>8s} {'× filterpy':>11s}")
    for name in lines:
        print(f"{name:34s} {median[name]:8.1f} {p99[name]:8.1f} {ratio[name]:11.2f}")


if __name__ == "__main__":
    main()
