"""A learned model of healthy behaviour: expected sensor values given the operating settings, and residuals.

Fitted on the early, healthy cycles of a fleet (:func:`fit_healthy_behaviour`), the block turns every
cycle's sensors into normalised residuals ``z``, comparable across operating conditions: about standard
normal while an asset is healthy, drifting as it degrades.
"""

import numpy as np

from twingraph import Block, Context, Signal, WiringError

SETTING_DECIMALS = (0, 2, 0)  # rounding of (altitude [kft], Mach [-], TRA [%]) that names a C-MAPSS operating condition
MIN_SHARE = 0.01  # a rounded setting seen in fewer rows than this share is noise, not an operating condition
SD_FLOOR = 1e-9  # smallest sensor standard deviation used as a divisor [sensor unit]


class HealthyBehaviour(Block):
    """Normalised residuals of the sensors against their expected healthy values in the current operating condition.

    Ports
    -----
    settings (in) : operating settings ``(3,)`` of the cycle (C-MAPSS: altitude, Mach number, throttle).
    sensors (in) : sensor vector ``(S,)`` of the cycle [raw units].
    valid (in) : bool, False where the asset has no cycle at this tick.
    z (out) : normalised residuals ``(S,)`` [-]; NaN where ``valid`` is False or an input is NaN.

    Notes
    -----
    With ``K`` operating conditions, centres ``c_j`` of the settings and their scale ``s``
    (learned by :func:`fit_healthy_behaviour`, held in the weights)::

        j_k = argmin_j ||(settings_k - c_j) / s||       the cycle's operating condition
        z_k = (sensors_k - mu_{j_k}) / sigma_{j_k}       residual in units of the healthy spread

    ``mu_j`` and ``sigma_j`` are the mean and standard deviation of each sensor over the healthy cycles
    in condition ``j``. Untrained, the block has one condition, ``mu = 0`` and ``sigma = 1`` (``z`` is the
    sensors). The block is stateless: :meth:`residuals` computes the same numbers offline.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> settings = np.repeat([[0.0, 0.0, 100.0], [42.0, 0.84, 100.0]], 50, axis=0)
    >>> sensors = np.where(settings[:, :1] > 0, 500.0, 600.0) + rng.normal(0.0, 2.0, (100, 2))
    >>> model = fit_healthy_behaviour(settings, sensors, name="healthy")
    >>> model.weights()["mean"].round()
    array([[600., 600.],
           [500., 500.]])
    >>> model.residuals(np.array([[42.0, 0.84, 100.0]]), np.array([[500.0, 510.0]])).round(1)
    array([[0.1, 5.5]])
    """

    inputs = {"settings": Signal(shape=(3,)), "sensors": Signal(), "valid": Signal(shape=(), dtype="bool")}
    outputs = {"z": Signal(unit="")}

    def __init__(self, *, name: str | None = None) -> None:
        super().__init__(name=name)

    def output_signals(self, inputs):
        shape = inputs["sensors"].shape
        if shape is not None and len(shape) != 1:
            raise WiringError(f"Block '{self.name}': input 'sensors' must be a vector (S,). Got shape {shape}.")
        n_sensors = getattr(self, "_mean", None)
        if shape is not None and n_sensors is not None and n_sensors.shape[1] != shape[0]:
            raise WiringError(f"Block '{self.name}': input 'sensors' must have shape ({n_sensors.shape[1]},), the "
                              f"sensors it was fitted on. Got shape {shape}.")
        return {"z": Signal(shape=shape, unit="")}

    def build(self, n_sensors: int) -> None:
        """The untrained model for ``n_sensors`` sensors (one condition, ``mu = 0``, ``sigma = 1``) unless fitted."""
        if getattr(self, "_mean", None) is None:
            self.set_model(np.zeros((1, 3)), np.ones(3), np.zeros((1, n_sensors)), np.ones((1, n_sensors)))

    def set_model(self, centres: np.ndarray, scale: np.ndarray, mean: np.ndarray, sd: np.ndarray) -> None:
        """Set the learned arrays: centres ``(K, 3)``, settings scale ``(3,)``, sensor mean and sd ``(K, S)``."""
        centres, scale = np.asarray(centres, dtype=float), np.asarray(scale, dtype=float)
        mean, sd = np.asarray(mean, dtype=float), np.asarray(sd, dtype=float)
        k = len(centres)
        if centres.shape != (k, 3) or scale.shape != (3,) or mean.ndim != 2 or mean.shape[0] != k or sd.shape != \
                mean.shape or not (np.all(scale > 0) and np.all(sd > 0)) or k == 0:
            raise WiringError(f"Block '{self.name}': the healthy model needs centres (K, 3), scale (3,) > 0, mean "
                              f"and sd (K, S) with sd > 0. Got {centres.shape}, {scale.shape}, {mean.shape}, "
                              f"{sd.shape} instead.")
        self._centres, self._scale, self._mean, self._sd = centres.copy(), scale.copy(), mean.copy(), sd.copy()

    def condition(self, settings: np.ndarray) -> np.ndarray:
        """Index ``(N,)`` of the nearest operating condition of settings ``(N, 3)``."""
        distance = (((settings[:, None, :] - self._centres[None]) / self._scale) ** 2).sum(axis=2)
        return np.argmin(np.nan_to_num(distance, nan=np.inf), axis=1)

    def residuals(self, settings: np.ndarray, sensors: np.ndarray) -> np.ndarray:
        """Normalised residuals ``(N, S)`` of sensors ``(N, S)`` at settings ``(N, 3)`` (the offline path)."""
        settings, sensors = np.asarray(settings, dtype=float), np.asarray(sensors, dtype=float)
        self.build(sensors.shape[1])
        j = self.condition(settings)
        z = (sensors - self._mean[j]) / self._sd[j]
        z[np.isnan(settings).any(axis=1)] = np.nan
        return z

    def weights(self) -> dict[str, np.ndarray]:
        if getattr(self, "_mean", None) is None:
            return {}
        return {"centres": self._centres.copy(), "scale": self._scale.copy(), "mean": self._mean.copy(),
                "sd": self._sd.copy()}

    def load_weights(self, weights: dict[str, np.ndarray]) -> None:
        if not weights:
            return
        keys = ["centres", "mean", "scale", "sd"]
        if sorted(weights) != keys:
            raise WiringError(f"Block '{self.name}': weights must have keys {keys}. Got {sorted(weights)} instead.")
        self.set_model(weights["centres"], weights["scale"], weights["mean"], weights["sd"])

    def reset(self, ctx: Context) -> None:
        n_sensors = ctx.inputs["sensors"].shape[0]
        self.build(n_sensors)
        if self._mean.shape[1] != n_sensors:
            raise WiringError(f"Block '{self.name}': input 'sensors' must have shape ({self._mean.shape[1]},), the "
                              f"sensors it was fitted on. Got shape ({n_sensors},).")

    def output(self, t, inp, out):
        valid = inp.valid.astype(bool)
        out.z[...] = np.nan
        if valid.any():
            out.z[valid] = self.residuals(inp.settings[valid], inp.sensors[valid])


def operating_conditions(settings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centres ``(K, 3)`` of the operating conditions in settings ``(N, 3)`` and their scale ``(3,)``.

    Deterministic: the settings are rounded (``SETTING_DECIMALS``: C-MAPSS runs at six set points,
    e.g. 42 kft, Mach 0.84, TRA 100), each rounded value seen in at least ``MIN_SHARE`` of the rows
    is a condition, and its centre is the mean of its rows' settings (one k-means step from the
    rounded values). The scale is each setting's standard deviation over all rows (1 where it is 0).
    """
    settings = np.asarray(settings, dtype=float)
    rounded = np.column_stack([np.round(settings[:, i], d) for i, d in enumerate(SETTING_DECIMALS)])
    _, which, counts = np.unique(rounded, axis=0, return_inverse=True, return_counts=True)
    kept = np.flatnonzero(counts >= MIN_SHARE * len(settings))
    centres = np.array([settings[which == k].mean(axis=0) for k in kept])
    scale = settings.std(axis=0)
    return centres, np.where(scale > 0, scale, 1.0)


def fit_healthy_behaviour(settings: np.ndarray, sensors: np.ndarray, healthy: np.ndarray | None = None, *,
                          name: str | None = None) -> HealthyBehaviour:
    """A :class:`HealthyBehaviour` fitted on the healthy rows of a fleet.

    Parameters
    ----------
    settings : array ``(N, 3)``
        Operating settings of every row (all rows locate the operating conditions).
    sensors : array ``(N, S)``
        Sensor values of every row [raw units].
    healthy : bool array ``(N,)`` or None
        The rows taken as healthy (e.g. the first 30 cycles of each training unit); ``None``: all.
    name : str or None
        Name of the block.

    Returns
    -------
    HealthyBehaviour
        Per condition, each sensor's mean and standard deviation over the healthy rows in it.
    """
    settings, sensors = np.asarray(settings, dtype=float), np.asarray(sensors, dtype=float)
    healthy = np.ones(len(settings), dtype=bool) if healthy is None else np.asarray(healthy, dtype=bool)
    if settings.ndim != 2 or settings.shape[1] != 3 or sensors.ndim != 2 or len(sensors) != len(settings) or \
            healthy.shape != (len(settings),):
        raise ValueError(f"fit_healthy_behaviour needs settings (N, 3), sensors (N, S) and healthy (N,). Got "
                         f"{settings.shape}, {sensors.shape} and {healthy.shape} instead.")
    centres, scale = operating_conditions(settings)
    shape = (len(centres), sensors.shape[1])
    block = HealthyBehaviour(name=name)
    block.set_model(centres, scale, np.zeros(shape), np.ones(shape))
    j = block.condition(settings)
    mean, sd = np.zeros(shape), np.ones(shape)
    for k in range(len(centres)):
        rows = healthy & (j == k)
        if rows.sum() < 2:
            raise ValueError(f"fit_healthy_behaviour: operating condition {k} (settings {centres[k].round(3)}) has "
                             f"{rows.sum()} healthy rows; it needs at least 2.")
        mean[k] = sensors[rows].mean(axis=0)
        sd[k] = np.maximum(sensors[rows].std(axis=0, ddof=1), SD_FLOOR)
    block.set_model(centres, scale, mean, sd)
    return block


def first_cycles(units: np.ndarray, n_cycles: int) -> np.ndarray:
    """Bool mask ``(N,)`` of the first ``n_cycles`` rows of each unit in ``units (N,)`` (rows in cycle order).

    >>> first_cycles(np.array([1, 1, 1, 2, 2]), 2)
    array([ True,  True, False,  True,  True])
    """
    units = np.asarray(units)
    start = np.r_[True, units[1:] != units[:-1]]
    index = np.arange(len(units)) - np.maximum.accumulate(np.where(start, np.arange(len(units)), 0))
    return index < n_cycles


__all__ = ["HealthyBehaviour", "first_cycles", "fit_healthy_behaviour", "operating_conditions"]
