"""Composition: several ODE models joined into one model with one joint state.

Two blocks wired in a graph exchange values once per tick (the co-simulation
contract), so a model fed by another sees its input held over the tick. A
:class:`SeriesModel` or :class:`ParallelModel` instead evaluates its members
together inside every derivative evaluation, and integrates their joint state
with one integrator: tightly coupled models keep the integrator's accuracy.
"""

from typing import Any

import numpy as np

from twingraph import units
from twingraph.errors import invalid_param

from .ode import ODEModel, common_unit


class _Composite(ODEModel, abstract=True):
    """Members, joint state and prefixed parameters shared by series and parallel composition."""

    def __init__(
        self,
        models=None,
        x0=None,
        integrator="rk4",
        substeps=1,
        method="RK45",
        rtol=1e-6,
        atol=1e-9,
        *,
        name=None,
    ):
        super().__init__(x0, integrator, substeps, method, rtol, atol, name=name)
        self.models = models

    @property
    def members(self) -> tuple[ODEModel, ...]:
        """``models`` as a tuple, or the ParamError saying that it must be a non-empty sequence of ODE models."""
        models = self.models
        if not isinstance(models, (tuple, list)) or not models or not all(isinstance(m, ODEModel) for m in models):
            raise invalid_param(self, "models", "a non-empty sequence of ODEModel blocks", models)
        return tuple(models)

    @property
    def prefixes(self) -> list[str]:
        """Each member's name (``"m<i>"`` when unnamed), the prefix of its states and parameters."""
        return [model.name or f"m{i}" for i, model in enumerate(self.members)]

    @property
    def states(self) -> tuple[str, ...]:
        return tuple(f"{prefix}.{s}" for prefix, m in zip(self.prefixes, self.members) for s in m.states)

    @property
    def state_units(self) -> tuple[str | None, ...]:
        return tuple(unit for m in self.members for unit in (m.state_units or (None,) * m.n_x))

    @property
    def parameters(self) -> tuple[str, ...]:
        return tuple(f"{prefix}.{q}" for prefix, m in zip(self.prefixes, self.members) for q in m.parameters)

    @property
    def positive(self) -> tuple[str, ...]:
        return tuple(f"{prefix}.{q}" for prefix, m in zip(self.prefixes, self.members) for q in m.positive)

    def parameter_values(self) -> dict[str, Any]:
        return {
            f"{prefix}.{q}": value
            for prefix, m in zip(self.prefixes, self.members)
            for q, value in m.parameter_values().items()
        }

    def initial_state(self, batch: int) -> np.ndarray:
        """``x0`` when given, else the members' own initial states side by side."""
        if self.x0 is None:
            return np.concatenate([m.initial_state(batch) for m in self.members], axis=1)
        return super().initial_state(batch)

    def check_params(self) -> None:
        super().check_params()
        prefixes = self.prefixes
        if len(set(prefixes)) < len(prefixes):
            raise invalid_param(self, "models", "models with distinct names", prefixes)
        for model in self.members:
            model.check_params()

    def _split(self, x: np.ndarray, p: dict[str, np.ndarray]):
        """Yield each member with its slice of the joint state and its own parameters."""
        start = 0
        for prefix, model in zip(self.prefixes, self.members):
            span = slice(start, start + model.n_x)
            params = {q: p[f"{prefix}.{q}"] for q in model.parameters}
            yield model, span, x[:, span], params
            start = span.stop


class SeriesModel(_Composite):
    """Models in series: the output of each drives the input of the next.

    Parameters
    ----------
    models : sequence of ODEModel
        The chain, first to last; each model's output size must equal the next
        one's input size (``None`` until set: the graph does not validate without them).
        Each member's integrator settings are ignored: the joint state is
        integrated with this block's.
    x0 : array_like or None
        Initial joint state; ``None`` takes each member's ``x0``.
    integrator, substeps, method, rtol, atol, name
        As for :class:`~blocks.physics.ode.ODEModel`.

    Ports
    -----
    u (in) : the first model's input.
    y (out) : the last model's output.
    x (out) : the joint state, the members' states side by side.

    Notes
    -----
    States and parameters are named ``"<member name>.<name>"``. In every
    derivative evaluation, for members ``i = 1 … n``::

        u₁ = u
        ẋᵢ = fᵢ(xᵢ, uᵢ, t, pᵢ)
        uᵢ₊₁ = hᵢ(xᵢ, uᵢ, pᵢ)
        y = hₙ(xₙ, uₙ, pₙ)

    The series has direct feedthrough only when every member has. It has no
    analytic Jacobian: estimators and stiff solvers use finite differences.

    Examples
    --------
    Two unit lags in series answer a unit step with ``1 - (1 + t) e^{-t}``:

    >>> from blocks.physics import FirstOrderLag
    >>> series = SeriesModel([FirstOrderLag(name="lag1"), FirstOrderLag(name="lag2")], substeps=10)
    >>> series.states, series.parameters
    (('lag1.y', 'lag2.y'), ('lag1.tau', 'lag1.gain', 'lag2.tau', 'lag2.gain'))
    >>> x = series.advance(np.zeros((1, 2)), np.ones((1, 1)), 0.0, 1.0, series.batch_params(1))
    >>> round(float(x[0, 1]), 5), round(1 - 2 * float(np.exp(-1.0)), 5)
    (0.26424, 0.26424)
    """

    @property
    def n_inputs(self) -> int:
        return self.members[0].n_u

    @property
    def input_unit(self) -> str | None:
        return self.members[0].input_unit

    @property
    def n_outputs(self) -> int:
        return self.members[-1].n_y

    @property
    def output_unit(self) -> str | None:
        return self.members[-1].y_unit

    @property
    def direct_feedthrough(self) -> bool:
        return all(m.direct_feedthrough for m in self.members)

    def check_params(self) -> None:
        super().check_params()
        for (i, a), (j, b) in zip(enumerate(self.members), enumerate(self.members[1:], start=1)):
            if a.n_y != b.n_u or units.mismatch(a.y_unit, b.input_unit):
                raise invalid_param(
                    self,
                    "models",
                    f"a chain where each output feeds the next input, but model {i} ({type(a).__name__}) "
                    f"outputs ({a.n_y},) [{a.y_unit}] and model {j} ({type(b).__name__}) takes ({b.n_u},) "
                    f"[{b.input_unit}]",
                    self.prefixes,
                )

    def derivative(self, x, u, t, p):
        dx = np.empty_like(x)
        for model, span, xi, pi in self._split(x, p):
            dx[:, span] = model.derivative(xi, u, t, pi)
            u = model.observe(xi, u, pi)
        return dx

    def observe(self, x, u, p):
        for model, _, xi, pi in self._split(x, p):
            u = model.observe(xi, u, pi)
        return u


class ParallelModel(_Composite):
    """Models in parallel: one input drives every model, the output is the sum of theirs.

    Parameters
    ----------
    models : sequence of ODEModel
        Models with the same input size and unit and the same output size and
        unit (``None`` until set: the graph does not validate without them).
        Each member's integrator settings are ignored.
    x0 : array_like or None
        Initial joint state; ``None`` takes each member's ``x0``.
    integrator, substeps, method, rtol, atol, name
        As for :class:`~blocks.physics.ode.ODEModel`.

    Ports
    -----
    u (in) : the common input.
    y (out) : the sum of the members' outputs.
    x (out) : the joint state, the members' states side by side.

    Notes
    -----
    States and parameters are named ``"<member name>.<name>"``::

        ẋᵢ = fᵢ(xᵢ, u, t, pᵢ)
        y = Σᵢ hᵢ(xᵢ, u, pᵢ)

    The sum has direct feedthrough when any member has. It has no analytic
    Jacobian: estimators and stiff solvers use finite differences.

    Examples
    --------
    >>> from blocks.physics import FirstOrderLag
    >>> lags = [FirstOrderLag(tau=1.0, name="slow"), FirstOrderLag(tau=0.1, name="fast")]
    >>> both = ParallelModel(lags, substeps=50)
    >>> x = both.advance(np.zeros((1, 2)), np.ones((1, 1)), 0.0, 1.0, both.batch_params(1))
    >>> y = both.observe(x, np.ones((1, 1)), both.batch_params(1))
    >>> round(float(y[0, 0]), 5), round(2 - float(np.exp(-1.0) + np.exp(-10.0)), 5)
    (1.63208, 1.63208)
    """

    @property
    def n_inputs(self) -> int:
        return self.members[0].n_u

    @property
    def input_unit(self) -> str | None:
        return self.members[0].input_unit

    @property
    def n_outputs(self) -> int:
        return self.members[0].n_y

    @property
    def output_unit(self) -> str | None:
        return common_unit(m.y_unit for m in self.members)

    @property
    def direct_feedthrough(self) -> bool:
        return any(m.direct_feedthrough for m in self.members)

    def check_params(self) -> None:
        super().check_params()
        first = self.members[0]

        def interface(model):
            return model.n_u, model.input_unit, model.n_y, model.y_unit

        for i, model in enumerate(self.members[1:], start=1):
            if interface(model) != interface(first):
                raise invalid_param(
                    self,
                    "models",
                    f"models with one input and one output signal, but model 0 ({type(first).__name__}) maps "
                    f"({first.n_u},) [{first.input_unit}] to ({first.n_y},) [{first.y_unit}] and model {i} "
                    f"({type(model).__name__}) ({model.n_u},) [{model.input_unit}] to ({model.n_y},) [{model.y_unit}]",
                    self.prefixes,
                )

    def derivative(self, x, u, t, p):
        dx = np.empty_like(x)
        for model, span, xi, pi in self._split(x, p):
            dx[:, span] = model.derivative(xi, u, t, pi)
        return dx

    def observe(self, x, u, p):
        return sum(model.observe(xi, u, pi) for model, _, xi, pi in self._split(x, p))
