"""Math: elementwise arithmetic on signals of any shape."""

import numpy as np

from twingraph import Block, Context, Signal, WiringError, units
from twingraph.errors import check_array, check_number, check_unit, invalid_param


def check_ops(block: Block, param: str, allowed: str) -> None:
    """Raise ParamError unless param ``param`` of ``block`` is a non-empty string of ``allowed`` characters."""
    text = getattr(block, param)
    if not isinstance(text, str) or not text or set(text) - set(allowed):
        raise invalid_param(block, param, f"a non-empty string of {list(allowed)}", text)


def check_broadcast(block: Block, param: str, shape: tuple | None, per_asset: bool = False, batch=None) -> None:
    """Raise ParamError unless param ``param`` of ``block`` broadcasts to signals of ``shape`` (None: not known).

    ``per_asset``: the value may also hold one row per asset, shape ``(B, *shape)``;
    ``B`` must be ``batch`` when given (at reset), and is free otherwise (at validate).
    """
    if shape is None:
        return
    value = getattr(block, param)
    target = tuple(shape)
    if per_asset and np.ndim(value) == len(target) + 1:
        target = (np.shape(value)[0] if batch is None else batch, *target)
    try:
        fits = np.broadcast_shapes(np.shape(value), target) == target
    except ValueError:
        fits = False
    if not fits:
        expected = f"a value broadcastable to the signal shape {tuple(shape)}"
        if per_asset:
            rows = ", ".join(["B" if batch is None else str(batch), *map(str, shape)])
            expected += f" or one row per asset, shape ({rows})"
        raise invalid_param(block, param, expected, value)


class Gain(Block):
    """Multiply by a constant: ``y = k u`` (elementwise).

    Parameters
    ----------
    k : float or array_like
        Gain, finite, broadcast against the input shape.
    unit : str or None
        Unit of the output; ``None`` keeps the input's unit, ``""`` is dimensionless.

    Ports
    -----
    u (in) : any shape.
    y (out) : same shape as ``u``.

    Examples
    --------
    >>> Gain(k=0.5, name="half")
    Gain(k=0.5, unit=None, name='half')
    """

    inputs = {"u": Signal()}
    outputs = {"y": Signal()}

    def __init__(self, k=1.0, unit: str | None = None, *, name: str | None = None):
        super().__init__(name=name)
        self.k = k
        self.unit = unit

    def check_params(self) -> None:
        check_array(self, "k")
        check_unit(self)

    def output_signals(self, inputs):
        self.check_params()
        (signal,) = super().output_signals(inputs).values()
        check_broadcast(self, "k", signal.shape)
        return {"y": Signal(shape=signal.shape, unit=signal.unit if self.unit is None else self.unit)}

    def reset(self, ctx: Context) -> None:
        self._k = np.asarray(self.k, dtype=float)

    def output(self, t, inp, out):
        np.multiply(inp.u, self._k, out=out.y)


class Sum(Block):
    """Add and subtract inputs: ``y = Σ s_i u_i``.

    Parameters
    ----------
    signs : str
        One ``+`` or ``-`` per input; inputs are named ``u1``, ``u2``, ...
        Inputs must share shape and unit.

    Ports
    -----
    u1 ... un (in) : same shape and unit.
    y (out) : the signed sum.

    Examples
    --------
    >>> [p.name for p in Sum(signs="+-", name="err").inp]
    ['u1', 'u2']
    """

    outputs = {"y": Signal()}

    def __init__(self, signs: str = "++", *, name: str | None = None):
        super().__init__(name=name)
        self.signs = signs

    def check_params(self) -> None:
        check_ops(self, "signs", "+-")

    def input_signals(self):
        self.check_params()
        return {f"u{i + 1}": Signal() for i in range(len(self.signs))}

    def reset(self, ctx: Context) -> None:
        self._negate_first = self.signs[0] == "-"
        self._rest = [(np.add if s == "+" else np.subtract, f"u{i + 2}") for i, s in enumerate(self.signs[1:])]

    def output(self, t, inp, out):
        y = out.y
        if self._negate_first:
            np.negative(inp.u1, out=y)
        else:
            y[...] = inp.u1
        for op, port in self._rest:
            op(y, inp[port], out=y)


class Product(Block):
    """Multiply and divide inputs elementwise: ``y = Π u_i^{±1}``.

    Parameters
    ----------
    ops : str
        One ``*`` (multiply) or ``/`` (divide) per input ``u1``, ``u2``, ...
    unit : str or None
        Unit of the output; ``None`` derives it from the inputs' units (``m`` over ``s`` is ``m/s``)
        when all are known.

    Ports
    -----
    u1 ... un (in) : same shape.
    y (out) : the product.
    """

    def __init__(self, ops: str = "**", unit: str | None = None, *, name: str | None = None):
        super().__init__(name=name)
        self.ops = ops
        self.unit = unit

    def check_params(self) -> None:
        check_ops(self, "ops", "*/")
        check_unit(self)

    def input_signals(self):
        self.check_params()
        return {f"u{i + 1}": Signal() for i in range(len(self.ops))}

    def output_signals(self, inputs):
        shapes = {s.shape for s in inputs.values()} - {None}
        if len(shapes) > 1:
            raise WiringError(f"Product '{self.name}' needs inputs of one shape. Got {sorted(shapes)}.")
        derived = units.product((inputs[f"u{i + 1}"].unit, 1 if o == "*" else -1) for i, o in enumerate(self.ops))
        return {"y": Signal(shape=shapes.pop() if shapes else None, unit=derived if self.unit is None else self.unit)}

    def reset(self, ctx: Context) -> None:
        self._ops = [(np.multiply if o == "*" else np.divide, f"u{i + 1}") for i, o in enumerate(self.ops)]

    def output(self, t, inp, out):
        y = out.y
        y[...] = 1.0
        for op, port in self._ops:
            op(y, inp[port], out=y)


class Saturation(Block):
    """Clip to ``[lower, upper]``.

    Parameters
    ----------
    lower, upper : float
        Bounds, in the input's unit, ``lower <= upper``; ``±inf`` leaves a side open.

    Ports
    -----
    u (in) : any shape.
    y (out) : ``min(max(u, lower), upper)``.
    """

    inputs = {"u": Signal()}
    outputs = {"y": Signal()}

    def __init__(self, lower: float = -1.0, upper: float = 1.0, *, name: str | None = None):
        super().__init__(name=name)
        self.lower = lower
        self.upper = upper

    def check_params(self) -> None:
        check_number(self, "lower", finite=False)
        check_number(self, "upper", finite=False)
        if not self.upper >= self.lower:
            raise invalid_param(self, "upper", f">= lower ({float(self.lower)})", float(self.upper))

    def output(self, t, inp, out):
        np.clip(inp.u, self.lower, self.upper, out=out.y)


__all__ = ["Gain", "Product", "Saturation", "Sum"]
