"""Remaining useful life from a sliding window of smoothed sensor readings (a 1D CNN ensemble).

torch is imported when a network is built, not when this module is, so the
block type registers without torch installed.
"""

from collections.abc import Sequence
from numbers import Integral

import numpy as np

from twingraph import Block, Context, Signal, WiringError
from twingraph.errors import check_number, invalid_param, is_number

from .nets import standardisation, torch_module


def _cnn(n_features: int, window: int, channels: Sequence[int], kernel: int, hidden: int, seed: int):
    """``(N, window, n_features) -> (N,)``: 'same' 1D convolutions over time, channel dropout, a dense head."""
    torch = torch_module()
    nn = torch.nn

    class WindowCNN(nn.Module):
        def __init__(self):
            super().__init__()
            layers, n_in = [], n_features
            for n_out in channels:
                layers += [nn.Conv1d(n_in, n_out, kernel, padding=kernel // 2), nn.ReLU()]
                n_in = n_out
            # whole channels dropped (one mask per sample and channel): on C-MAPSS it generalised
            # better than dropping single elements, at a fraction of the random numbers
            self.conv = nn.Sequential(*layers, nn.Dropout1d(0.2))
            self.head = nn.Sequential(nn.Flatten(), nn.Linear(n_in * window, hidden), nn.ReLU(), nn.Linear(hidden, 1))

        def forward(self, z):
            return self.head(self.conv(z.transpose(1, 2))).squeeze(-1)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return WindowCNN()


def sliding_windows(x: np.ndarray, window: int) -> np.ndarray:
    """Every cycle's window ``(T, window, F)`` of one unit ``(T, F)``, padded by repeating the first cycle."""
    t = np.arange(len(x))[:, None] + np.arange(-window + 1, 1)[None, :]
    return x[np.clip(t, 0, None)]


AGE_KNOTS = (50.0, 100.0, 150.0, 200.0, 250.0)  # knots of the calibration's piecewise-linear age terms [cycles]


def calibration_features(rul: np.ndarray, age: np.ndarray, cap: float) -> np.ndarray:
    """Features ``(N, 10)`` of the RUL calibration: 1, r, r^2 / cap, a, r a and ``max(a - k, 0)`` per knot.

    ``r`` is the ensemble's raw RUL [cycles] clipped to ``[0, cap]`` (beyond the cap a network's
    output carries no information the benchmark rewards, and unclipped it dominated the fit),
    ``age`` the cycles the asset has run (1 at its first), ``a = age / 100``. The identity
    calibration is ``(0, 1, 0, ...)``.
    """
    rul = np.clip(np.asarray(rul, dtype=float), 0.0, cap)
    a = np.asarray(age, dtype=float) / 100.0
    return np.column_stack([np.ones_like(rul), rul, rul**2 / cap, a, rul * a,
                            *[np.maximum(a - k / 100.0, 0.0) for k in AGE_KNOTS]])


IDENTITY_CALIBRATION = np.eye(5 + len(AGE_KNOTS))[1]  # coefficients of rul = r (the untrained block)


def exponential_smoothing(z: np.ndarray, alpha: float) -> np.ndarray:
    """Causal smoothing of one unit ``(T, F)``: ``s_0 = z_0``, ``s_k = alpha z_k + (1 - alpha) s_{k-1}``."""
    s = np.array(z, dtype=float)
    for k in range(1, len(s)):
        s[k] = alpha * s[k] + (1.0 - alpha) * s[k - 1]
    return s


class WindowRUL(Block):
    """Remaining useful life and a health indicator from the last ``window`` smoothed sensor vectors of each asset.

    Parameters
    ----------
    window : int
        Cycles the network sees [cycles]; before ``window`` valid cycles the
        window is padded by repeating the asset's first cycle.
    alpha : float
        Exponential smoothing factor of the normalised sensors, in (0, 1] (1: no smoothing).
    channels : tuple of int
        Output channels of the 1D convolutions over time.
    kernel : int
        Convolution kernel length [cycles], odd.
    hidden : int
        Width of the dense layer after the convolutions.
    n_models : int
        Ensemble members (seeds ``seed, seed + 1, ...``); the outputs are averaged, then calibrated.
    cap : float
        Largest RUL the block reports [cycles]: the output is clipped to ``[0, cap]`` and
        ``hi = rul / cap``. Training targets may be capped higher (see :func:`train_window_rul`).
    seed : int
        Seed of the first member's initial weights and of its training.

    Ports
    -----
    u (in) : ``(F,)`` sensor vector of the current cycle (raw units; normalised inside), or any per-cycle
        feature vector: the turbofan twin feeds the normalised residuals ``z`` of ``HealthyBehaviour``,
        which makes cycles in different operating conditions comparable.
    valid (in) : bool, False where the asset has no cycle at this tick (before its data starts).
    rul (out) : remaining useful life [cycles]; NaN where the asset has not had a valid cycle yet.
    hi (out) : health indicator in [0, 1] (1 healthy); NaN like ``rul``.

    Notes
    -----
    Per asset, with ``z_k = (u_k - mu) / sigma`` (mean and standard deviation of the
    training data, held in the weights)::

        s_k   = alpha z_k + (1 - alpha) s_{k-1},  s_0 = z_0   exponential smoothing
        W_k   = [s_{k-window+1}, ..., s_k]                    ring of the last window cycles
        r_k   = mean_m net_m(W_k)                             ensemble of 1D CNNs
        rul_k = clip(c . phi(r_k, k), 0, cap)                 calibrated with the asset's age k [cycles]
        hi_k  = rul_k / cap

    ``phi`` is :func:`calibration_features`: the network sees ``window`` cycles, not how long the
    engine has run, and on C-MAPSS its error depends on age (engines still running late in life
    degrade slowly and are predicted early; young degrading ones late). :func:`train_window_rul`
    fits ``c`` on out-of-fold predictions; untrained, ``c`` is the identity.

    The state (``smooth_``, ``window_``, ``count_``) is all a cycle needs, so the
    block runs online; :func:`train_window_rul` builds the same windows offline
    (:func:`exponential_smoothing`, :func:`sliding_windows`). Until trained the
    networks are their seeded initial weights and the statistics the identity.

    Examples
    --------
    >>> WindowRUL(window=10, name="rul").out.rul
    <output rul.rul: () float64 [cycle]>
    """

    inputs = {"u": Signal(), "valid": Signal(shape=(), dtype="bool")}
    outputs = {"rul": Signal(shape=(), unit="cycle"), "hi": Signal(shape=(), unit="")}

    def __init__(self, window: int = 50, alpha: float = 0.1, channels: tuple = (32, 64), kernel: int = 5,
                 hidden: int = 64, n_models: int = 1, cap: float = 125.0, seed: int = 0, *, name: str | None = None):
        super().__init__(name=name)
        self.window = window
        self.alpha = alpha
        self.channels = channels
        self.kernel = kernel
        self.hidden = hidden
        self.n_models = n_models
        self.cap = cap
        self.seed = seed

    def check_params(self) -> None:
        for param in ("window", "hidden", "n_models"):
            check_number(self, param, low=1, integer=True)
        check_number(self, "kernel", low=1, integer=True)
        if self.kernel % 2 == 0:
            raise invalid_param(self, "kernel", "an odd int >= 1 [cycles]", self.kernel)
        check_number(self, "alpha", low=0, high=1, low_open=True)
        channels = self.channels
        if not isinstance(channels, (tuple, list)) or not all(
            is_number(c) and isinstance(c, Integral) and c >= 1 for c in channels
        ):
            raise invalid_param(self, "channels", "a sequence of channel counts, ints >= 1", channels)
        check_number(self, "cap", low=0, low_open=True, unit="cycle")
        check_number(self, "seed", low=0, integer=True)

    def output_signals(self, inputs):
        self.check_params()
        shape = inputs["u"].shape
        if shape is not None and len(shape) != 1:
            raise WiringError(f"Block '{self.name}': input 'u' must be a vector (F,). Got shape {shape}.")
        return dict(self.outputs)

    def build(self, n_features: int) -> None:
        """Build the ensemble for ``n_features`` inputs (seeded weights, identity normalisation) unless built."""
        self.check_params()
        if getattr(self, "_nets", None) is not None and self._n_features == n_features:
            return
        self._n_features = n_features
        self._nets = [_cnn(n_features, self.window, tuple(self.channels), self.kernel, self.hidden, self.seed + m)
                      for m in range(self.n_models)]
        for net in self._nets:
            net.eval()
        self._x_mean = np.zeros(n_features)
        self._x_std = np.ones(n_features)
        self._calibration = IDENTITY_CALIBRATION.copy()
        pending = getattr(self, "_pending", None)
        if pending is not None:
            self._pending = None
            self.load_weights(pending)

    def normalise(self, x: np.ndarray) -> np.ndarray:
        """Sensor values standardised with the training statistics (``(x - mu) / sigma``)."""
        return (x - self._x_mean) / self._x_std

    def unit_windows(self, x: np.ndarray) -> np.ndarray:
        """Every cycle's network input ``(T, window, F)`` for one asset's raw sensors ``(T, F)`` (offline path)."""
        return sliding_windows(exponential_smoothing(self.normalise(x), self.alpha), self.window)

    def predict_windows(self, windows: np.ndarray, nets: Sequence | None = None) -> np.ndarray:
        """Raw (uncalibrated) mean RUL [cycles] of ``nets`` (default: the ensemble) on windows ``(N, window, F)``."""
        torch = torch_module()
        z = torch.from_numpy(np.ascontiguousarray(windows, dtype=np.float32))
        with torch.no_grad():
            return np.mean([net(z).numpy() for net in (self._nets if nets is None else nets)], axis=0).astype(float)

    def calibrate(self, rul: np.ndarray, age: np.ndarray) -> np.ndarray:
        """Reported RUL [cycles]: raw ensemble ``rul`` at ``age`` [cycles] calibrated and clipped to ``[0, cap]``."""
        return np.clip(calibration_features(rul, age, self.cap) @ self._calibration, 0.0, self.cap)

    def predict_unit(self, x: np.ndarray) -> np.ndarray:
        """Reported RUL [cycles] at every cycle of one asset's raw sensors ``(T, F)`` (offline path)."""
        return self.calibrate(self.predict_windows(self.unit_windows(x)), np.arange(1, len(x) + 1))

    def weights(self) -> dict[str, np.ndarray]:
        if getattr(self, "_nets", None) is None:
            return {}
        arrays = {"x_mean": self._x_mean.copy(), "x_std": self._x_std.copy(),
                  "calibration": self._calibration.copy()}
        for m, net in enumerate(self._nets):
            for key, value in net.state_dict().items():
                arrays[f"m{m}.{key}"] = value.detach().numpy().copy()
        return arrays

    def load_weights(self, weights: dict[str, np.ndarray]) -> None:
        if not weights:
            return
        if getattr(self, "_nets", None) is None:  # built lazily: keep them until the size is known
            if "x_mean" not in weights:
                raise WiringError(f"Block '{self.name}': weights must hold the sensor statistics 'x_mean' and "
                                  f"'x_std' (weights saved before z-scoring held 'x_min', 'x_scale': retrain). "
                                  f"Got {len(weights)} arrays without 'x_mean' instead.")
            self._pending = dict(weights)
            self.build(int(np.shape(weights["x_mean"])[0]))
            return
        torch = torch_module()
        expected = set(self.weights())
        if set(weights) != expected:
            raise WiringError(f"Block '{self.name}': weights must have keys {sorted(expected)}. "
                              f"Got {sorted(weights)} instead.")
        self._x_mean = np.asarray(weights["x_mean"], dtype=float).copy()
        self._x_std = np.asarray(weights["x_std"], dtype=float).copy()
        self._calibration = np.asarray(weights["calibration"], dtype=float).copy()
        for m, net in enumerate(self._nets):
            prefix = f"m{m}."
            net.load_state_dict({k[len(prefix):]: torch.from_numpy(np.array(v)) for k, v in weights.items()
                                 if k.startswith(prefix)})

    def reset(self, ctx: Context) -> None:
        n_features = ctx.inputs["u"].shape[0]
        self.build(n_features)
        self.smooth_ = np.zeros((ctx.batch, n_features))
        self.window_ = np.zeros((ctx.batch, self.window, n_features))
        self.count_ = np.zeros(ctx.batch, dtype=int)

    def _next(self, u: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The smoothed vectors and windows after this cycle's sensors ``u`` (unchanged where ``valid`` is False)."""
        z = self.normalise(u)
        first = valid & (self.count_ == 0)
        started = valid & (self.count_ > 0)
        smooth = self.smooth_.copy()
        smooth[first] = z[first]
        smooth[started] = self.alpha * z[started] + (1.0 - self.alpha) * self.smooth_[started]
        window = self.window_.copy()
        window[first] = smooth[first, None, :]  # pad with the first cycle
        window[started, :-1] = self.window_[started, 1:]
        window[started, -1] = smooth[started]
        return smooth, window

    def output(self, t, inp, out):
        valid = inp.valid.astype(bool)
        out.rul[...] = np.nan
        out.hi[...] = np.nan
        if valid.any():
            rul = self.calibrate(self.predict_windows(self._next(inp.u, valid)[1][valid]), self.count_[valid] + 1)
            out.rul[valid] = rul
            out.hi[valid] = rul / self.cap

    def update(self, t, inp):
        valid = inp.valid.astype(bool)
        self.smooth_[...], self.window_[...] = self._next(inp.u, valid)
        self.count_ += valid


def train_window_rul(block: WindowRUL, units: Sequence[np.ndarray], targets: Sequence[np.ndarray],
                     epochs: int = 40, batch_size: int = 512, lr: float = 2e-3, low_rul_weight: float = 3.0,
                     sample_fraction: float = 1.0, progress: bool = True) -> dict:
    """Fit ``block``'s statistics, ensemble and calibration on every cycle's window of run-to-failure units.

    Parameters
    ----------
    block : WindowRUL
        The block to train; its statistics and weights are replaced.
    units : sequence of arrays ``(T_i, F)``
        Raw sensor vectors of each training unit, one row per cycle.
    targets : sequence of arrays ``(T_i,)``
        Capped RUL of each row [cycles] (piecewise linear). A cap a little above ``block.cap``
        lifts the prediction for healthy-looking windows, which the mean-squared-error fit
        otherwise pulls below the plateau (some of them belong to short-lived units).
    epochs, batch_size, lr : int, int, float
        Adam on the weighted mean squared error, learning rate decayed to 0 over
        ``epochs`` on a cosine; the weights of the last epoch are kept.
    low_rul_weight : float
        Sample weight ``1 + low_rul_weight * (1 - y / y_max)`` with ``y_max`` the largest target:
        a cycle at failure counts ``1 + low_rul_weight`` times one on the plateau (the late end of
        life is where the error costs most).
    sample_fraction : float
        Share of the training windows drawn (without replacement, afresh) in each epoch, in (0, 1]:
        neighbouring windows of a unit overlap almost entirely, so an epoch over a fraction of them
        costs that fraction of the time for nearly the same progress.
    progress : bool
        Show a tqdm bar per member.

    Cross-fitting: with ``n_models = M >= 2`` the units are split into ``M`` folds (seeded by
    ``block.seed``) and member ``m`` trains on every fold but ``m``. Member ``m``'s predictions on
    fold ``m``, which it has not seen, then fit the calibration ``c`` by least squares (targets
    clipped to ``block.cap``, each unit weighted equally), so the calibration learns the error
    of a network on new engines, not on its training data. With ``M = 1`` the member trains on
    every unit and the calibration stays the identity.

    Returns
    -------
    dict
        ``"train_rmse"``: per member, the list of per-epoch RMSE over the training windows
        (accumulated during the epoch, dropout on) [cycles]. With ``M >= 2`` also
        ``"fold"``: each unit's fold, and ``"oof_rul"``: per unit, the calibrated RUL at every
        cycle [cycles] from the member that did not train on it (cross-validated predictions,
        from which a later stage can learn how far to trust the block).

    Notes
    -----
    Member ``m`` is initialised and shuffled with seed ``block.seed + m`` (torch's global
    generator, used by dropout, is seeded too and restored afterwards), so a run repeats exactly
    for the same data, threads and torch build.
    """
    torch = torch_module()
    from tqdm.auto import tqdm

    if len(units) != len(targets) or len(units) < 1:
        raise ValueError(f"train_window_rul needs as many target arrays as units, at least 1. "
                         f"Got {len(units)} units and {len(targets)} targets instead.")
    if low_rul_weight < 0:
        raise ValueError(f"The 'low_rul_weight' parameter of train_window_rul must be >= 0. "
                         f"Got {low_rul_weight!r} instead.")
    y = np.concatenate(targets).astype(float)
    if not np.all(np.isfinite(y)) or y.min() < 0 or y.max() <= 0:
        raise ValueError("train_window_rul needs finite targets >= 0 [cycles], not all zero. "
                         f"Got values in [{np.nanmin(y)}, {np.nanmax(y)}] instead.")
    if not 0 < sample_fraction <= 1:
        raise ValueError(f"The 'sample_fraction' parameter of train_window_rul must be in (0, 1]. "
                         f"Got {sample_fraction!r} instead.")
    if block.n_models > len(units):
        raise ValueError(f"train_window_rul cross-fits {block.n_models} members on as many folds of units: "
                         f"it needs at least {block.n_models} units. Got {len(units)} instead.")
    n_features = units[0].shape[1]
    block._nets = None
    block.build(n_features)
    block._x_mean, block._x_std = standardisation(np.vstack(units))
    windows = [block.unit_windows(x) for x in units]
    fold_of_unit = np.random.default_rng(block.seed).permutation(len(units)) % block.n_models
    fold = np.repeat(fold_of_unit, [len(t) for t in targets])
    w_all = torch.from_numpy(np.concatenate(windows).astype(np.float32))
    y_all = torch.from_numpy(y.astype(np.float32))
    weight_all = 1.0 + low_rul_weight * (1.0 - y_all / torch.max(y_all))

    curves = {"train_rmse": []}
    for m, net in enumerate(block._nets):
        rows = torch.from_numpy(np.flatnonzero(fold != m) if block.n_models > 1 else np.arange(len(fold)))
        w_m, y_m, weight_m = w_all[rows], y_all[rows], weight_all[rows]
        curve = []
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(block.seed + m)
            gen = torch.Generator().manual_seed(block.seed + m)
            opt = torch.optim.Adam(net.parameters(), lr=lr)
            schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
            bar = tqdm(range(epochs), desc=f"WindowRUL member {m + 1}/{block.n_models}", disable=not progress)
            net.train()
            for _ in bar:
                perm = torch.randperm(len(y_m), generator=gen)[:max(1, round(sample_fraction * len(y_m)))]
                squared = 0.0
                for start in range(0, len(perm), batch_size):
                    b = perm[start:start + batch_size]
                    opt.zero_grad()
                    error2 = (net(w_m[b]) - y_m[b]) ** 2
                    loss = torch.sum(weight_m[b] * error2) / torch.sum(weight_m[b])
                    loss.backward()
                    opt.step()
                    squared += float(error2.detach().sum())
                schedule.step()
                curve.append(float(np.sqrt(squared / len(perm))))
                bar.set_postfix(rmse=f"{curve[-1]:.2f}")
            net.eval()
        curves["train_rmse"].append(curve)
    if block.n_models > 1:
        raw = [block.predict_windows(windows[i], nets=[block._nets[fold_of_unit[i]]]) for i in range(len(units))]
        block._calibration = fit_calibration(raw, [np.minimum(t, block.cap) for t in targets], block.cap)
        curves["fold"] = fold_of_unit
        curves["oof_rul"] = [block.calibrate(r, np.arange(1, len(r) + 1)) for r in raw]
    return curves


def fit_calibration(rul: Sequence[np.ndarray], targets: Sequence[np.ndarray], cap: float) -> np.ndarray:
    """Least-squares calibration coefficients from raw RUL ``(T_i,)`` of units seen from their first cycle.

    Each unit counts equally (row weight ``1 / T_i``); the features are :func:`calibration_features`
    with ages ``1 .. T_i``.
    """
    x = np.vstack([calibration_features(r, np.arange(1, len(r) + 1), cap) for r in rul])
    row_weight = np.sqrt(np.concatenate([np.full(len(r), 1.0 / len(r)) for r in rul]))
    return np.linalg.lstsq(x * row_weight[:, None], np.concatenate(targets) * row_weight, rcond=None)[0]


__all__ = ["AGE_KNOTS", "IDENTITY_CALIBRATION", "WindowRUL", "calibration_features", "exponential_smoothing",
           "fit_calibration", "sliding_windows", "train_window_rul"]
