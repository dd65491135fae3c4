"""Math: elementwise arithmetic on signals of any shape."""

import numpy as np

from twingraph import Block, Context, Signal, WiringError


def _check_ops(block: Block, param: str, text, allowed: str) -> None:
    if not isinstance(text, str) or not text or set(text) - set(allowed):
        raise WiringError(
            f"The '{param}' parameter of {type(block).__name__} '{block.name}' must be a non-empty string "
            f"of {list(allowed)}. Got {text!r} instead."
        )


class Gain(Block):
    """Multiply by a constant: ``y = k u`` (elementwise).

    Parameters
    ----------
    k : float or array_like
        Gain, broadcast against the input shape.
    unit : str or None
        Unit of the output; ``None`` keeps the input's unit.

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

    def output_signals(self, inputs):
        (signal,) = super().output_signals(inputs).values()
        return {"y": Signal(shape=signal.shape, unit=self.unit or signal.unit)}

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

    def input_signals(self):
        _check_ops(self, "signs", self.signs, "+-")
        return {f"u{i + 1}": Signal() for i in range(len(self.signs))}

    def reset(self, ctx: Context) -> None:
        self._first = "u1"
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
        Unit of the output (units of a product are not inferred).

    Ports
    -----
    u1 ... un (in) : same shape.
    y (out) : the product.
    """

    def __init__(self, ops: str = "**", unit: str | None = None, *, name: str | None = None):
        super().__init__(name=name)
        self.ops = ops
        self.unit = unit

    def input_signals(self):
        _check_ops(self, "ops", self.ops, "*/")
        return {f"u{i + 1}": Signal() for i in range(len(self.ops))}

    def output_signals(self, inputs):
        shapes = {s.shape for s in inputs.values()} - {None}
        if len(shapes) > 1:
            raise WiringError(f"Product '{self.name}' needs inputs of one shape. Got {sorted(shapes)}.")
        return {"y": Signal(shape=shapes.pop() if shapes else None, unit=self.unit)}

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
        Bounds, in the input's unit.

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

    def reset(self, ctx: Context) -> None:
        if not self.lower <= self.upper:
            raise WiringError(
                f"The 'lower' parameter of Saturation '{self.name}' must be <= 'upper'. "
                f"Got lower={self.lower}, upper={self.upper} instead."
            )

    def output(self, t, inp, out):
        np.clip(inp.u, self.lower, self.upper, out=out.y)


__all__ = ["Gain", "Product", "Saturation", "Sum"]
