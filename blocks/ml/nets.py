"""Networks and their weights: float64 multilayer perceptrons with input/output normalisation.

torch is imported when a network is built, not when this module is, so the
block types of :mod:`blocks.ml` register without torch installed.

Every ML block holds its network in the same form::

    z   = (inputs - in_mean) / in_scale       normalised inputs
    out = net(z) * out_scale + out_mean       de-normalised outputs

with the normalisation statistics stored beside the network's weights: both
are the block's learned arrays (:meth:`TorchModel.weights`).
"""

from collections.abc import Sequence
from itertools import pairwise
from numbers import Integral

import numpy as np

from twingraph import WiringError
from twingraph._optional import require
from twingraph.errors import check_choice, check_number, invalid_param, is_number

ACTIVATIONS = ("tanh", "relu", "silu", "gelu", "softplus", "elu")


def torch_module():
    """The ``torch`` module, or ImportError naming ``pip install 'twingraph[ml]'``."""
    return require("torch", "ml", purpose="neural network blocks")


def mlp(n_in: int, n_out: int, hidden: Sequence[int] = (64, 64), activation: str = "tanh", seed: int = 0,
        zero_last: bool = False):
    """A float64 multilayer perceptron ``n_in -> hidden... -> n_out``, initialised from ``seed``.

    The global torch RNG is left as it was. ``zero_last`` zeroes the last
    layer, so the network starts as the zero function (a residual that does
    not correct anything before training).
    """
    torch = torch_module()
    if activation not in ACTIVATIONS:
        raise ValueError(f"The activation must be one of {list(ACTIVATIONS)}. Got {activation!r} instead.")
    act = {"tanh": torch.nn.Tanh, "relu": torch.nn.ReLU, "silu": torch.nn.SiLU, "gelu": torch.nn.GELU,
           "softplus": torch.nn.Softplus, "elu": torch.nn.ELU}[activation]
    sizes = [n_in, *hidden, n_out]
    layers = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for i, (a, b) in enumerate(pairwise(sizes)):
            layers.append(torch.nn.Linear(a, b, dtype=torch.float64))
            if i < len(sizes) - 2:
                layers.append(act())
    net = torch.nn.Sequential(*layers)
    if zero_last:
        with torch.no_grad():
            layers[-1].weight.zero_()
            layers[-1].bias.zero_()
    return net


def check_architecture(block) -> None:
    """Raise ParamError unless the params ``hidden``, ``activation`` and ``seed`` of ``block`` describe an MLP.

    Examples
    --------
    >>> from blocks.ml import NeuralODE
    >>> from twingraph import ParamError
    >>> try:
    ...     check_architecture(NeuralODE(hidden=(8, 0), name="node"))
    ... except ParamError as error:
    ...     print(error)
    The 'hidden' parameter of NeuralODE 'node' must be a sequence of layer widths, ints >= 1. Got (8, 0).
    """
    hidden = block.hidden
    if not isinstance(hidden, (tuple, list)) or not all(is_number(h) and isinstance(h, Integral) and h >= 1
                                                         for h in hidden):
        raise invalid_param(block, "hidden", "a sequence of layer widths, ints >= 1", hidden)
    check_choice(block, "activation", ACTIVATIONS)
    check_number(block, "seed", low=0, integer=True)


def default_dynamics_net(state_dim: int, input_dim: int, hidden: Sequence[int] = (64, 64),
                         activation: str = "tanh", seed: int = 0):
    """The network of :class:`~blocks.ml.NeuralDynamics`: ``(x_k, u_k) -> x_{k+1} - x_k``, normalised."""
    return mlp(state_dim + input_dim, state_dim, hidden, activation, seed)


def standardisation(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column mean and scale of sample rows ``(N, F)``: the standard deviation, or 1 where it is (near) zero."""
    std = rows.std(axis=0)
    return rows.mean(axis=0), np.where(std > 1e-12, std, 1.0)


class TorchModel:
    """The network, normalisation and weights hooks shared by the ML blocks (a mixin).

    A subclass defines :meth:`build_network` (from its params) and the sizes
    ``net_inputs`` and ``net_outputs``; the network is built on first use,
    with normalisation statistics that start as the identity.
    """

    NORMALIZATION = ("in_mean", "in_scale", "out_mean", "out_scale")

    @property
    def net_inputs(self) -> int:
        raise NotImplementedError

    @property
    def net_outputs(self) -> int:
        raise NotImplementedError

    def build_network(self):
        """A fresh network from the params (architecture and seed)."""
        raise NotImplementedError

    def network(self):
        """The torch module, built from the params on first use."""
        if self.__dict__.get("_net") is None:
            self._net = self.build_network()
            self._norm = self.identity_normalization()
        return self._net

    def identity_normalization(self) -> dict[str, np.ndarray]:
        return {
            "in_mean": np.zeros(self.net_inputs),
            "in_scale": np.ones(self.net_inputs),
            "out_mean": np.zeros(self.net_outputs),
            "out_scale": np.ones(self.net_outputs),
        }

    @property
    def normalization(self) -> dict[str, np.ndarray]:
        """The statistics ``in_mean``, ``in_scale``, ``out_mean``, ``out_scale`` (copies)."""
        self.network()
        return {k: v.copy() for k, v in self._norm.items()}

    def set_normalization(self, inputs: np.ndarray | None = None, outputs: np.ndarray | None = None) -> None:
        """Set the statistics from sample rows ``inputs (N, net_inputs)`` and ``outputs (N, net_outputs)``.

        A column with (near) zero spread keeps scale 1, so it passes unscaled.
        """
        self.network()
        for side, rows, size in (("in", inputs, self.net_inputs), ("out", outputs, self.net_outputs)):
            if rows is None:
                continue
            rows = np.asarray(rows, dtype=float).reshape(len(rows), -1)
            if rows.shape[1] != size:
                raise ValueError(f"{type(self).__name__} '{self.name}': {side}puts must have {size} columns. "
                                 f"Got {rows.shape[1]} instead.")
            self._norm[f"{side}_mean"], self._norm[f"{side}_scale"] = standardisation(rows)

    def net_forward(self, z):
        """``net((z - in_mean) / in_scale) * out_scale + out_mean`` for a torch tensor ``z (B, net_inputs)``."""
        torch = torch_module()
        net = self.network()
        n = {k: torch.from_numpy(v) for k, v in self._norm.items()}
        return net((z - n["in_mean"]) / n["in_scale"]) * n["out_scale"] + n["out_mean"]

    def weights(self) -> dict[str, np.ndarray]:
        """The network's parameters (``net.<torch name>``) and the statistics (``norm.<name>``), as arrays."""
        net = self.network()
        arrays = {f"net.{k}": v.detach().numpy().copy() for k, v in net.state_dict().items()}
        arrays.update({f"norm.{k}": v.copy() for k, v in self._norm.items()})
        return arrays

    def load_weights(self, weights: dict[str, np.ndarray]) -> None:
        """Take back what :meth:`weights` returned; every array must be present with its shape."""
        torch = torch_module()
        expected = self.weights()
        missing = sorted(set(expected) - set(weights))
        unknown = sorted(set(weights) - set(expected))
        if missing or unknown:
            raise WiringError(f"{type(self).__name__} '{self.name}': weights do not match the network built from "
                              f"its params (missing {missing}, unknown {unknown}).")
        for key, value in weights.items():
            if np.shape(value) != expected[key].shape:
                raise WiringError(f"{type(self).__name__} '{self.name}': weight '{key}' must have shape "
                                  f"{expected[key].shape}. Got {np.shape(value)} instead.")
        state = {k[4:]: torch.tensor(np.asarray(v, dtype=float)) for k, v in weights.items() if k.startswith("net.")}
        self._net.load_state_dict(state)
        self._norm = {k[5:]: np.asarray(v, dtype=float).copy() for k, v in weights.items() if k.startswith("norm.")}


def to_tensor(a: np.ndarray):
    """A float64 torch view of a NumPy array (a copy only when ``a`` is not contiguous float64)."""
    return torch_module().from_numpy(np.ascontiguousarray(a, dtype=np.float64))
