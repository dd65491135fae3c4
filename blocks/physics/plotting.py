"""Plots of trajectories, from a :class:`~twingraph.History` port or from raw arrays.

matplotlib is imported when a plot is made, not when this module is.
"""

import numpy as np

from twingraph import History
from twingraph._optional import require
from twingraph.history import element_columns


def trajectory(data, port=None, *, time=None, asset=0, labels=None):
    """Time, values and labels of one trajectory, as the plotting functions use them.

    Parameters
    ----------
    data : History or array_like
        A history with ``port`` logged, or values of shape ``(T,)``, ``(T, n)``
        or ``(T, B, n)`` (one asset is taken).
    port : str or None
        The logged port (``"block.port"``) when ``data`` is a History.
    time : array_like or None
        Times of the rows [s] for raw arrays; default the row number.
    asset : int
        The asset to take from a batch.
    labels : sequence of str or None
        Column labels; default the history column names or ``x[i]``.

    Returns
    -------
    time : ndarray, shape (T,)
    values : ndarray, shape (T, n)
    labels : list of str

    Examples
    --------
    >>> t, values, labels = trajectory(np.zeros((5, 2, 3)), asset=1)
    >>> t, values.shape, labels
    (array([0, 1, 2, 3, 4]), (5, 3), ['x[0]', 'x[1]', 'x[2]'])
    """
    if isinstance(data, History):
        if port is None:
            raise ValueError(f"Give the port to plot from the history; logged ports are {data.ports}.")
        values = data[port] if data.batch == 1 else data[port][:, asset]
        values = values.reshape(len(values), -1)
        default_labels = element_columns(port, data.slots[port].shape)
        default_time = data.time
    else:
        if port is not None:
            raise ValueError(f"'port' names a History port; got raw values and port={port!r}.")
        values = np.asarray(data, dtype=float)
        if values.ndim == 3:
            values = values[:, asset]
        if values.ndim not in (1, 2):
            raise ValueError(f"Raw values must have shape (T,), (T, n) or (T, B, n). Got {np.shape(data)} instead.")
        values = values.reshape(len(values), -1)
        default_labels = [f"x[{i}]" for i in range(values.shape[1])]
        default_time = np.arange(len(values)) if time is None else np.asarray(time)
    labels = default_labels if labels is None else list(labels)
    if len(default_time) != len(values) or len(labels) != values.shape[1]:
        raise ValueError(
            f"Got {len(values)} rows of {values.shape[1]} values, {len(default_time)} times and {len(labels)} labels."
        )
    return default_time, values, labels


def plot_state_vs_time(data, port=None, *, time=None, asset=0, labels=None, ax=None):
    """Plot every element of a trajectory against time on one axes; return the axes.

    ``data``, ``port``, ``time``, ``asset`` and ``labels`` are as for :func:`trajectory`.
    """
    plt = require("matplotlib.pyplot", purpose="plot_state_vs_time")
    t, values, labels = trajectory(data, port, time=time, asset=asset, labels=labels)
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3), layout="constrained")
    for column, label in zip(values.T, labels):
        ax.plot(t, column, label=label)
    ax.set_xlabel("time [s]" if isinstance(data, History) or time is not None else "tick")
    if len(labels) > 1:
        ax.legend(loc="best", fontsize="small")
    return ax


def plot_phase_portrait(data, port=None, *, i=0, j=1, time=None, asset=0, labels=None, ax=None):
    """Plot element ``j`` against element ``i`` of a trajectory (e.g. velocity against position).

    The start is marked with a dot. ``data``, ``port``, ``time``, ``asset`` and
    ``labels`` are as for :func:`trajectory`; returns the axes.
    """
    plt = require("matplotlib.pyplot", purpose="plot_phase_portrait")
    _, values, labels = trajectory(data, port, time=time, asset=asset, labels=labels)
    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 4.5), layout="constrained")
    (line,) = ax.plot(values[:, i], values[:, j])
    ax.plot(values[0, i], values[0, j], "o", color=line.get_color())
    ax.set_xlabel(labels[i])
    ax.set_ylabel(labels[j])
    return ax


def animate_profile(data, port=None, *, time=None, asset=0, interval=40, ax=None):
    """Animate a profile over its elements (chain displacements, node temperatures), one frame a row.

    ``data``, ``port``, ``time`` and ``asset`` are as for :func:`trajectory`.
    ``interval`` is the delay between frames [ms]. Returns the
    :class:`matplotlib.animation.FuncAnimation`; keep a reference to it while
    it plays, or save it with ``.save("chain.gif")``.
    """
    plt = require("matplotlib.pyplot", purpose="animate_profile")
    animation = require("matplotlib.animation", purpose="animate_profile")
    t, values, _ = trajectory(data, port, time=time, asset=asset)
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3), layout="constrained")
    index = np.arange(values.shape[1])
    (line,) = ax.plot(index, values[0], "o-")
    low, high = float(values.min()), float(values.max())
    margin = 0.05 * (high - low) or 1.0
    ax.set_ylim(low - margin, high + margin)
    ax.set_xlabel("element")
    ax.set_ylabel(port or "value")
    title = ax.set_title("")

    def draw(k):
        line.set_ydata(values[k])
        title.set_text(f"t = {t[k]:g}")
        return line, title

    return animation.FuncAnimation(ax.figure, draw, frames=len(values), interval=interval, blit=False)
