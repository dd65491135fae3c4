"""Remaining useful life from a sliding window of sensor readings (a 1D CNN ensemble).

torch is imported when a network is built, not when this module is, so the
block type registers without torch installed.
"""

from collections.abc import Sequence

import numpy as np

from twingraph import Block, Context, Signal, WiringError
from twingraph._optional import require


def _torch():
    return require("torch", "ml", purpose="the WindowRUL block")


def _cnn(n_features: int, window: int, channels: Sequence[int], kernel: int, hidden: int, seed: int):
    """``(N, window, n_features) -> (N,)``: 'same' 1D convolutions over time, then a dense head."""
    torch = _torch()
    nn = torch.nn

    class WindowCNN(nn.Module):
        def __init__(self):
            super().__init__()
            layers, n_in = [], n_features
            for n_out in channels:
                layers += [nn.Conv1d(n_in, n_out, kernel, padding=kernel // 2), nn.ReLU()]
                n_in = n_out
            self.conv = nn.Sequential(*layers)
            self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.2), nn.Linear(n_in * window, hidden), nn.ReLU(),
                                      nn.Linear(hidden, 1))

        def forward(self, z):
            return self.head(self.conv(z.transpose(1, 2))).squeeze(-1)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return WindowCNN()


def sliding_windows(x: np.ndarray, window: int) -> np.ndarray:
    """Every cycle's window ``(T, window, F)`` of one unit ``(T, F)``, padded by repeating the first cycle."""
    t = np.arange(len(x))[:, None] + np.arange(-window + 1, 1)[None, :]
    return x[np.clip(t, 0, None)]


class WindowRUL(Block):
    """Remaining useful life and a health indicator from the last ``window`` sensor vectors of each asset.

    Parameters
    ----------
    window : int
        Cycles the network sees [cycles]; before ``window`` valid cycles the
        window is padded by repeating the asset's first cycle.
    channels : tuple of int
        Output channels of the 1D convolutions over time.
    kernel : int
        Convolution kernel length [cycles] (odd).
    hidden : int
        Width of the dense layer after the convolutions.
    n_models : int
        Ensemble members (seeds ``seed, seed + 1, ...``); the outputs are averaged.
    cap : float
        Largest RUL the targets hold [cycles] (piecewise-linear target); the output is clipped to
        ``[0, cap]`` and ``hi = rul / cap``.
    seed : int
        Seed of the first member's initial weights.

    Ports
    -----
    x (in) : ``(F,)`` sensor vector of the current cycle (raw units; normalised inside).
    valid (in) : bool, False where the asset has no cycle at this tick (before its data starts).
    rul (out) : remaining useful life [cycles]; NaN where the asset has not had a valid cycle yet.
    hi (out) : health indicator in [0, 1] (1 healthy); NaN like ``rul``.

    Notes
    -----
    Per asset, with ``z_k = (x_k - x_min) / x_scale`` (min-max statistics of the
    training data, held in the weights)::

        W_k   = [z_{k-window+1}, ..., z_k]        ring of the last window cycles
        rul_k = clip(mean_m net_m(W_k), 0, cap)   ensemble of 1D CNNs, within the target range
        hi_k  = rul_k / cap

    Train with :func:`train_window_rul`; until then the networks are their
    seeded initial weights and the statistics the identity.

    Examples
    --------
    >>> WindowRUL(window=10, name="rul").out.rul
    <output rul.rul: () float64 [cycle]>
    """

    inputs = {"x": Signal(), "valid": Signal(shape=(), dtype="bool")}
    outputs = {"rul": Signal(shape=(), unit="cycle"), "hi": Signal(shape=(), unit="")}

    def __init__(self, window: int = 30, channels: tuple = (32, 64), kernel: int = 5, hidden: int = 64,
                 n_models: int = 1, cap: float = 125.0, seed: int = 0, *, name: str | None = None):
        super().__init__(name=name)
        self.window = window
        self.channels = channels
        self.kernel = kernel
        self.hidden = hidden
        self.n_models = n_models
        self.cap = cap
        self.seed = seed

    def output_signals(self, inputs):
        shape = inputs["x"].shape
        if shape is not None and len(shape) != 1:
            raise WiringError(f"Block '{self.name}': input 'x' must be a vector (F,). Got shape {shape} instead.")
        return dict(self.outputs)

    def build(self, n_features: int) -> None:
        """Build the ensemble for ``n_features`` inputs (seeded weights, identity normalisation) unless built."""
        for param in ("window", "kernel", "hidden", "n_models"):
            if not isinstance(getattr(self, param), (int, np.integer)) or getattr(self, param) < 1:
                raise ValueError(f"The '{param}' parameter of WindowRUL must be an int >= 1. "
                                 f"Got {getattr(self, param)!r} instead.")
        if getattr(self, "_nets", None) is not None and self._n_features == n_features:
            return
        self._n_features = n_features
        self._nets = [_cnn(n_features, self.window, tuple(self.channels), self.kernel, self.hidden, self.seed + m)
                      for m in range(self.n_models)]
        for net in self._nets:
            net.eval()
        self._x_min = np.zeros(n_features)
        self._x_scale = np.ones(n_features)
        pending = getattr(self, "_pending", None)
        if pending is not None:
            self._pending = None
            self.load_weights(pending)

    def normalise(self, x: np.ndarray) -> np.ndarray:
        """Sensor values scaled with the training statistics (``(x - x_min) / x_scale``)."""
        return (x - self._x_min) / self._x_scale

    def predict_windows(self, windows: np.ndarray) -> np.ndarray:
        """Ensemble-mean RUL [cycles] of normalised windows ``(N, window, F)``."""
        torch = _torch()
        z = torch.from_numpy(np.ascontiguousarray(windows, dtype=np.float32))
        with torch.no_grad():
            return np.mean([net(z).numpy() for net in self._nets], axis=0).astype(float)

    def weights(self) -> dict[str, np.ndarray]:
        if getattr(self, "_nets", None) is None:
            return {}
        arrays = {"x_min": self._x_min.copy(), "x_scale": self._x_scale.copy()}
        for m, net in enumerate(self._nets):
            for key, value in net.state_dict().items():
                arrays[f"m{m}.{key}"] = value.detach().numpy().copy()
        return arrays

    def load_weights(self, weights: dict[str, np.ndarray]) -> None:
        if not weights:
            return
        if getattr(self, "_nets", None) is None:  # built lazily: keep them until the size is known
            self._pending = dict(weights)
            self.build(int(np.shape(weights["x_min"])[0]))
            return
        torch = _torch()
        expected = set(self.weights())
        if set(weights) != expected:
            raise WiringError(f"Block '{self.name}': weights must have keys {sorted(expected)}. "
                              f"Got {sorted(weights)} instead.")
        self._x_min = np.asarray(weights["x_min"], dtype=float).copy()
        self._x_scale = np.asarray(weights["x_scale"], dtype=float).copy()
        for m, net in enumerate(self._nets):
            prefix = f"m{m}."
            net.load_state_dict({k[len(prefix):]: torch.from_numpy(np.array(v)) for k, v in weights.items()
                                 if k.startswith(prefix)})

    def reset(self, ctx: Context) -> None:
        n_features = ctx.inputs["x"].shape[0]
        self.build(n_features)
        self.window_ = np.zeros((ctx.batch, self.window, n_features))
        self.count_ = np.zeros(ctx.batch, dtype=int)

    def _next_windows(self, x: np.ndarray, valid: np.ndarray) -> np.ndarray:
        z = self.normalise(x)
        nxt = self.window_.copy()
        started = valid & (self.count_ > 0)
        first = valid & (self.count_ == 0)
        nxt[started, :-1] = self.window_[started, 1:]
        nxt[started, -1] = z[started]
        nxt[first] = z[first, None, :]  # pad with the first cycle
        return nxt

    def output(self, t, inp, out):
        valid = inp.valid.astype(bool)
        out.rul[...] = np.nan
        out.hi[...] = np.nan
        if valid.any():
            rul = np.clip(self.predict_windows(self._next_windows(inp.x, valid)[valid]), 0.0, self.cap)
            out.rul[valid] = rul
            out.hi[valid] = rul / self.cap

    def update(self, t, inp):
        valid = inp.valid.astype(bool)
        self.window_[...] = self._next_windows(inp.x, valid)
        self.count_ += valid


def train_window_rul(block: WindowRUL, units: Sequence[np.ndarray], targets: Sequence[np.ndarray],
                     epochs: int = 30, batch_size: int = 512, lr: float = 2e-3, val_fraction: float = 0.2,
                     patience: int = 6, progress: bool = True) -> dict[str, list]:
    """Fit ``block``'s ensemble on sliding windows of run-to-failure units; return the loss curves.

    Parameters
    ----------
    block : WindowRUL
        The block to train; its statistics and weights are replaced.
    units : sequence of arrays ``(T_i, F)``
        Raw sensor vectors of each training unit, one row per cycle.
    targets : sequence of arrays ``(T_i,)``
        Capped RUL of each row [cycles].
    epochs, batch_size, lr : int, int, float
        Adam on the mean squared error.
    val_fraction : float
        Fraction of the units held out (by unit, drawn with ``block.seed``) for early stopping.
    patience : int
        Epochs without a better validation RMSE before a member stops; its best epoch is kept.
    progress : bool
        Show a tqdm bar per member.

    Returns
    -------
    dict
        ``"train_rmse"`` and ``"val_rmse"``: per member, the list of per-epoch values.
    """
    torch = _torch()
    from tqdm.auto import tqdm

    if len(units) != len(targets) or len(units) < 2:
        raise ValueError(f"train_window_rul needs as many target arrays as units, at least 2. "
                         f"Got {len(units)} units and {len(targets)} targets instead.")
    n_features = units[0].shape[1]
    block._nets = None
    block.build(n_features)
    stacked = np.vstack(units)
    block._x_min = stacked.min(axis=0)
    block._x_scale = np.where(np.ptp(stacked, axis=0) > 0, np.ptp(stacked, axis=0), 1.0)

    rng = np.random.default_rng(block.seed)
    order = rng.permutation(len(units))
    n_val = max(1, round(val_fraction * len(units)))
    split = {"val": order[:n_val], "train": order[n_val:]}
    data = {}
    for part, idx in split.items():
        w = np.concatenate([sliding_windows(block.normalise(units[i]), block.window) for i in idx])
        y = np.concatenate([targets[i] for i in idx])
        data[part] = (torch.from_numpy(w.astype(np.float32)), torch.from_numpy(np.asarray(y, dtype=np.float32)))

    def rmse(net, part):
        w, y = data[part]
        net.eval()
        with torch.no_grad():
            return float(torch.sqrt(torch.mean((net(w) - y) ** 2)))

    curves = {"train_rmse": [], "val_rmse": []}
    for m, net in enumerate(block._nets):
        gen = torch.Generator().manual_seed(block.seed + m)
        opt = torch.optim.Adam(net.parameters(), lr=lr)
        w_train, y_train = data["train"]
        best, best_state, stale = np.inf, None, 0
        train_curve, val_curve = [], []
        bar = tqdm(range(epochs), desc=f"WindowRUL member {m + 1}/{block.n_models}", disable=not progress)
        for _ in bar:
            net.train()
            perm = torch.randperm(len(y_train), generator=gen)
            for start in range(0, len(perm), batch_size):
                b = perm[start:start + batch_size]
                opt.zero_grad()
                loss = torch.mean((net(w_train[b]) - y_train[b]) ** 2)
                loss.backward()
                opt.step()
            train_curve.append(rmse(net, "train"))
            val_curve.append(rmse(net, "val"))
            bar.set_postfix(train=f"{train_curve[-1]:.2f}", val=f"{val_curve[-1]:.2f}")
            if val_curve[-1] < best:
                best, stale = val_curve[-1], 0
                best_state = {k: v.clone() for k, v in net.state_dict().items()}
            else:
                stale += 1
                if stale >= patience:
                    break
        net.load_state_dict(best_state)
        net.eval()
        curves["train_rmse"].append(train_curve)
        curves["val_rmse"].append(val_curve)
    return curves


__all__ = ["WindowRUL", "sliding_windows", "train_window_rul"]
