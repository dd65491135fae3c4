"""ODE models: a block whose state follows ``ẋ = f(x, u, t, p)`` and outputs ``y = h(x, u, p)``.

:class:`ODEModel` is the base class of every physics block. A model states its
interface in class attributes and its dynamics in two vectorised methods;
the base class turns that into a block (ports, state, integration over each
tick) and into pure functions that estimators call with their own state and
parameter arrays (:meth:`ODEModel.advance`, :meth:`ODEModel.observe`).
:class:`FunctionODE` builds a model from plain functions instead.
"""

from typing import Any, ClassVar

import numpy as np

from twingraph import Block, Context, Signal, WiringError
from twingraph.errors import check_choice, check_number, invalid_param

from .integrators import FIXED_STEP, INTEGRATORS, METHODS, solve_ivp_step


def as_numbers(value: Any) -> np.ndarray | None:
    """``value`` as a float array when it holds real numbers only, else ``None`` (text, bools, ragged lists).

    >>> as_numbers([1, 2.5]), as_numbers("abc"), as_numbers([[1.0], [2.0, 3.0]])
    (array([1. , 2.5]), None, None)
    """
    try:
        array = np.asarray(value)
    except ValueError:
        return None
    return array.astype(float) if array.dtype.kind in "iuf" else None


def _is_sequence_of(value: Any, kind, length: int | None = None) -> bool:
    """Whether ``value`` is a tuple or list of ``kind`` items (``length`` of them when given)."""
    return (
        isinstance(value, (tuple, list))
        and all(isinstance(item, kind) for item in value)
        and (length is None or len(value) == length)
    )


def common_unit(units) -> str | None:
    """The unit shared by all ``units``, or ``None`` when they differ or are unspecified."""
    distinct = set(units or ())
    return distinct.pop() if len(distinct) == 1 else None


class ODEModel(Block, abstract=True):
    """Base class of continuous-time models, integrated over each tick with inputs held.

    A model is::

        ẋ = f(x, u, t, p)      derivative(x, u, t, p)
        y = h(x, u, p)          observe(x, u, p)         (default y = x)

    with, for a batch of ``B`` assets, ``x`` of shape ``(B, n_x)``, ``u`` of
    shape ``(B, n_u)`` (``(B, 0)`` for a model without inputs), ``t`` a float
    [s] and ``p`` a dict from parameter name to an array of shape ``(B,)``.
    Both methods are written vectorised over the batch.

    A subclass declares, as class attributes:

    - ``states``: state names; ``state_units``: their units;
    - ``n_inputs`` and ``input_unit``: size and unit of ``u`` (0: no input port);
    - ``n_outputs`` and ``output_unit``: size and unit of ``y`` (``None``: ``y = x``);
    - ``parameters``: the constructor arguments that are physical parameters.
      They may differ per asset (a scalar, or one value per asset) and an
      estimator may augment its state with them. ``positive`` lists those that
      must be > 0.

    Its constructor takes the physical parameters and ``x0``, and hands
    ``**kwargs`` (the solver params below and ``name``) to
    ``ODEModel.__init__``; they are params of the subclass too (saved,
    loaded, shown by ``repr`` and ``help``).

    A model whose size depends on its params defines these as properties and
    checks those params in :meth:`check_params` before calling
    ``super().check_params()``. A model whose ``observe`` uses ``u`` sets
    ``direct_feedthrough = True``. What a filter needs of a model beyond
    ``f`` and ``h`` is optional; where it is missing, the filter takes finite
    differences:

    - :meth:`jacobian`, an analytic ``∂f/∂x``;
    - :meth:`parameter_jacobian`, an analytic ``∂f/∂p`` for named parameters;
    - :meth:`observation_matrix`, ``C`` when ``h`` is linear, ``y = C x``
      (the default covers ``y = x``).

    The last two describe ``f`` and ``h``, so they are inherited only with
    them: a subclass that redefines :meth:`derivative` (:meth:`observe`)
    without its own :meth:`parameter_jacobian` (:meth:`observation_matrix`)
    gets the default, finite differences.

    Parameters
    ----------
    x0 : float or array_like
        Initial state: a scalar, one value per state ``(n_x,)``, or one such
        row per asset ``(B, n_x)``.
    integrator : {"rk4", "euler", "solve_ivp"}
        How each tick is integrated (:mod:`blocks.physics.integrators`).
    substeps : int
        Fixed steps per tick for ``"rk4"`` and ``"euler"``.
    method : {"RK45", "RK23", "DOP853", "Radau", "BDF", "LSODA"}
        :func:`scipy.integrate.solve_ivp` method for ``"solve_ivp"``; Radau,
        BDF or LSODA for stiff models.
    rtol, atol : float
        Tolerances for ``"solve_ivp"``.
    name : str or None
        Block name.

    Ports
    -----
    u (in) : inputs, shape ``(n_inputs,)``; absent when ``n_inputs == 0``.
    y (out) : outputs ``h(x, u, p)``, shape ``(n_outputs,)``.
    x (out) : the state, shape ``(n_x,)``.

    Notes
    -----
    Runtime state: ``x_`` of shape ``(B, n_x)`` and ``p_``, the parameters as
    ``(B,)`` arrays (:meth:`batch_params`). Each tick writes ``y`` and ``x``
    from the current state, then :meth:`advance` integrates ``x_`` over
    ``[t, t + dt]``. :meth:`advance`, :meth:`derivative`, :meth:`observe` and
    :meth:`jacobian` depend only on their arguments and the params, so an
    estimator can call them with its own ``x`` and ``p`` (sigma points,
    parameters augmented per asset) without resetting the block.

    Examples
    --------
    A model in fifteen lines, Newton's law of cooling ``R C dT/dt = T_a - T``:

    >>> import twingraph as tg
    >>> class CupCooling(ODEModel):
    ...     states = ("T",)
    ...     state_units = ("K",)
    ...     parameters = ("resistance", "capacitance")
    ...     positive = ("resistance", "capacitance")
    ...     def __init__(self, resistance=2.0, capacitance=5.0, x0=350.0, **kwargs):
    ...         super().__init__(x0, **kwargs)
    ...         self.resistance = resistance
    ...         self.capacitance = capacitance
    ...     def derivative(self, x, u, t, p):
    ...         tau = p["resistance"] * p["capacitance"]
    ...         return (300.0 - x) / tau[:, None]
    >>> g = tg.Graph("kitchen", dt=1.0)
    >>> cup = g.add(CupCooling(name="cup"))
    >>> hist = tg.Simulator(g).run(steps=11)
    >>> round(float(hist["cup.y"][10, 0]), 3), round(300 + 50 * float(np.exp(-1.0)), 3)
    (318.394, 318.394)

    The solver params are its params too, and every param is checked when a
    graph is validated:

    >>> list(cup.get_params())
    ['resistance', 'capacitance', 'x0', 'integrator', 'substeps', 'method', 'rtol', 'atol']
    >>> g = tg.Graph("kitchen", dt=1.0)
    >>> _ = g.add(CupCooling(capacitance=-5.0, name="cup"))
    >>> g.validate()
    Traceback (most recent call last):
    ...
    twingraph.errors.ParamError: Graph 'kitchen' has invalid params:
      - The 'capacitance' parameter of CupCooling 'cup' must be a number > 0, or one per asset. Got -5.0.
    """

    states: ClassVar[tuple[str, ...]] = ()
    state_units: ClassVar[tuple[str | None, ...] | None] = None
    n_inputs: ClassVar[int] = 0
    input_unit: ClassVar[str | None] = None
    n_outputs: ClassVar[int | None] = None
    output_unit: ClassVar[str | None] = None
    parameters: ClassVar[tuple[str, ...]] = ()
    positive: ClassVar[tuple[str, ...]] = ()
    direct_feedthrough = False

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        for equation, description in (("derivative", "parameter_jacobian"), ("observe", "observation_matrix")):
            if equation in vars(cls) and description not in vars(cls):  # a new f (h): its parent's no longer fits
                setattr(cls, description, getattr(ODEModel, description))

    def __init__(
        self,
        x0=0.0,
        integrator: str = "rk4",
        substeps: int = 1,
        method: str = "RK45",
        rtol: float = 1e-6,
        atol: float = 1e-9,
        *,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name)
        self.x0 = x0
        self.integrator = integrator
        self.substeps = substeps
        self.method = method
        self.rtol = rtol
        self.atol = atol

    @property
    def n_x(self) -> int:
        """Number of states."""
        return len(self.states)

    @property
    def n_u(self) -> int:
        """Number of inputs."""
        return self.n_inputs

    @property
    def n_y(self) -> int:
        """Number of outputs (``n_x`` when ``y = x``)."""
        return self.n_x if self.n_outputs is None else self.n_outputs

    @property
    def y_unit(self) -> str | None:
        """Unit of ``y`` (the states' common unit when ``y = x``)."""
        return common_unit(self.state_units) if self.n_outputs is None else self.output_unit

    def derivative(self, x: np.ndarray, u: np.ndarray, t: float, p: dict[str, np.ndarray]) -> np.ndarray:
        """``ẋ = f(x, u, t, p)``: ``(B, n_x)`` from ``x (B, n_x)``, ``u (B, n_u)``, ``p`` of ``(B,)`` arrays."""
        raise NotImplementedError(f"{type(self).__name__} must define derivative(self, x, u, t, p).")

    def observe(self, x: np.ndarray, u: np.ndarray, p: dict[str, np.ndarray]) -> np.ndarray:
        """``y = h(x, u, p)``, shape ``(B, n_y)``; by default every state, ``y = x``."""
        return x

    def jacobian(self, x: np.ndarray, u: np.ndarray, t: float, p: dict[str, np.ndarray]) -> np.ndarray | None:
        """``∂f/∂x``, shape ``(B, n_x, n_x)``, or ``None``: no analytic Jacobian, use finite differences."""
        return None

    def parameter_jacobian(
        self, x: np.ndarray, u: np.ndarray, t: float, p: dict[str, np.ndarray], names: tuple[str, ...]
    ) -> np.ndarray | None:
        """``∂f/∂p`` for the parameters ``names``, shape ``(B, n_x, len(names))``; ``None``: finite differences."""
        return None

    def observation_matrix(self) -> np.ndarray | None:
        """``C``, shape ``(n_y, n_x)``, when ``h(x, u, p) = C x`` for every ``u`` and ``p``; else ``None``.

        A filter then takes ``∂h/∂x = C`` exactly instead of differencing ``h``.
        The default is the identity for a model that does not override
        :meth:`observe` (``y = x``); a model whose ``h`` selects or combines
        states linearly returns its matrix.
        """
        return np.eye(self.n_x) if type(self).observe is ODEModel.observe else None

    def event_time(
        self, x: np.ndarray, u: np.ndarray, p: dict[str, np.ndarray], variable: str, threshold: float, direction: str
    ) -> np.ndarray | None:
        """Time [s] until ``variable`` crosses ``threshold``, in closed form, or ``None``: integrate instead.

        ``x (M, n_x)``, ``u (M, n_u)`` held from now on, ``p`` of ``(M,)`` arrays; ``variable`` a
        state, parameter or ``"y[i]"``, reaching ``threshold`` from above (``direction="below"``)
        or from below (``"above"``). Returns ``(M,)``: 0 where the event has happened, ``inf``
        where it never does, NaN where the model has no closed form for that row (those rows are
        integrated). Only a time-invariant ``ẋ`` may define it; :func:`blocks.health.predict_rul`
        uses it when the future input is constant and there is no process noise.
        """
        return None

    def advance(self, x: np.ndarray, u: np.ndarray, t: float, dt: float, p: dict[str, np.ndarray]) -> np.ndarray:
        """Integrate ``x`` from ``t`` to ``t + dt`` with inputs ``u`` held; return the new ``(B, n_x)`` state."""

        def f(x, u, t):
            return self.derivative(x, u, t, p)

        if self.integrator == "solve_ivp":

            def jac(x, u, t):
                return self.jacobian(x, u, t, p)

            return solve_ivp_step(f, x, u, t, dt, self.method, self.rtol, self.atol, jac)
        step = FIXED_STEP.get(self.integrator)
        if step is None:
            raise invalid_param(self, "integrator", f"one of {list(INTEGRATORS)}", self.integrator)
        return step(f, x, u, t, dt, self.substeps)

    def rollout(self, x0, u, dt: float) -> np.ndarray:
        """States ``x_0 ... x_K``, shape ``(K + 1, B, n_x)``, from ``x0 (B, n_x)`` under inputs ``u (K, B, n_u)``.

        Each input is held over its step of ``dt`` [s], from ``t = 0``, with the
        model's own parameters; like :meth:`advance`, the block's state is untouched.

        Examples
        --------
        >>> def decay(x, u, t, p):
        ...     return -x
        >>> xs = FunctionODE(decay).rollout(np.ones((2, 1)), np.zeros((3, 2, 0)), dt=0.1)
        >>> xs.shape, bool(np.allclose(xs[-1], np.exp(-0.3), rtol=1e-6))
        ((4, 2, 1), True)
        """
        xs = [np.asarray(x0, dtype=float)]
        p = self.batch_params(len(xs[0]))
        for k, u_k in enumerate(np.asarray(u, dtype=float)):
            xs.append(self.advance(xs[-1], u_k, k * dt, dt, p))
        return np.stack(xs)

    def parameter_values(self) -> dict[str, Any]:
        """The physical parameters as given (scalars or per-asset sequences), by name."""
        return {name: getattr(self, name) for name in self.parameters}

    def batch_params(self, batch: int) -> dict[str, np.ndarray]:
        """The physical parameters for ``batch`` assets: ``p``, a dict of ``(B,)`` arrays."""
        p = {}
        for name, value in self.parameter_values().items():
            array = np.asarray(value, dtype=float)
            if array.ndim == 0:
                array = np.full(batch, array)
            elif array.shape == (batch,):
                array = array.copy()
            else:
                raise invalid_param(self, name, f"a number or a sequence of {batch} numbers (one per asset)", value)
            p[name] = array
        return p

    def initial_state(self, batch: int) -> np.ndarray:
        """The state at ``t = 0`` for ``batch`` assets, ``(B, n_x)``, from ``x0``."""
        x0 = as_numbers(self.x0)
        if x0 is not None and x0.ndim <= 2 and np.all(np.isfinite(x0)):
            try:
                return np.broadcast_to(x0, (batch, self.n_x)).copy()
            except ValueError:
                pass
        rows = f" ({batch} rows)" if x0 is not None and x0.ndim == 2 else ""
        expected = f"a number, one number per state {list(self.states)}, or one such row per asset{rows}"
        raise invalid_param(self, "x0", expected, self.x0)

    def check_params(self) -> None:
        """Raise ParamError naming the first invalid param: solver params, physical parameters, ``x0``.

        A physical parameter is a finite number or one per asset, > 0 where
        ``positive`` says so; ``x0`` fits the states. How many assets there
        are is known at reset, which checks the per-asset lengths.
        """
        check_choice(self, "integrator", INTEGRATORS)
        check_choice(self, "method", METHODS)
        check_number(self, "substeps", 1, integer=True)
        check_number(self, "rtol", 0, low_open=True)
        check_number(self, "atol", 0, low_open=True)
        for name, value in self.parameter_values().items():
            array = as_numbers(value)
            positive = name in self.positive
            if array is None or array.ndim > 1 or array.size == 0 or not np.all(np.isfinite(array)) or (
                positive and not np.all(array > 0)
            ):
                raise invalid_param(self, name, f"a number{' > 0' if positive else ''}, or one per asset", value)
        x0 = as_numbers(self.x0)
        self.initial_state(len(x0) if x0 is not None and x0.ndim == 2 else 1)

    def input_signals(self) -> dict[str, Signal]:
        if self.n_u == 0:
            return {}
        return {"u": Signal(shape=(self.n_u,), unit=self.input_unit)}

    def output_signals(self, inputs: dict[str, Signal]) -> dict[str, Signal]:
        self.check_params()
        return {
            "y": Signal(shape=(self.n_y,), unit=self.y_unit),
            "x": Signal(shape=(self.n_x,), unit=common_unit(self.state_units)),
        }

    def reset(self, ctx: Context) -> None:
        self.x_ = self.initial_state(ctx.batch)
        self.p_ = self.batch_params(ctx.batch)
        self._dt = ctx.dt
        self._has_input = self.n_u > 0
        self._no_input = np.zeros((ctx.batch, 0))
        self._check_shapes(np.zeros((ctx.batch, self.n_u)))

    def _check_shapes(self, u: np.ndarray) -> None:
        """Evaluate f and h once at the initial state: they must return one row per asset."""
        x = self.x_
        for what, value, expected in (
            ("derivative(x, u, t, p)", self.derivative(x, u, 0.0, self.p_), x.shape),
            ("observe(x, u, p)", self.observe(x, u, self.p_), (len(x), self.n_y)),
        ):
            if np.shape(value) != expected:
                raise WiringError(
                    f"{type(self).__name__} '{self.name}': {what} returned shape {np.shape(value)} for x of "
                    f"shape {x.shape}; it must return shape {expected} (one row per asset)."
                )

    def output(self, t, inp, out):
        u = inp.u if self._has_input else self._no_input
        out.x[...] = self.x_
        out.y[...] = self.observe(self.x_, u, self.p_)

    def update(self, t, inp):
        u = inp.u if self._has_input else self._no_input
        self.x_[...] = self.advance(self.x_, u, t, self._dt, self.p_)


_OWN = object()


def checked_model(owner: Any, param: str = "model", value: Any = _OWN) -> "ODEModel":
    """``owner``'s param ``param`` (or ``value``) when it is an ODE model, else the ParamError saying so."""
    model = getattr(owner, param) if value is _OWN else value
    if not isinstance(model, ODEModel):
        raise invalid_param(owner, param, "an ODEModel block", model)
    return model


def check_estimate(owner: Any, model: "ODEModel") -> None:
    """Raise ParamError unless ``owner.estimate`` names distinct parameters of ``model``."""
    names, estimate = list(model.parameters), owner.estimate
    if (
        not isinstance(estimate, (tuple, list))
        or not all(isinstance(p, str) and p in names for p in estimate)
        or len(set(estimate)) < len(estimate)
    ):
        raise invalid_param(owner, "estimate", f"a tuple of distinct names from {names}", estimate)


class FunctionODE(ODEModel):
    """An ODE model from plain functions: ``ẋ = f(x, u, t, p)``, ``y = h(x, u, p)``.

    The functions follow the :class:`ODEModel` conventions (vectorised over the
    batch, ``p`` a dict of ``(B,)`` arrays). Functions cannot be saved to JSON:
    a graph holding a FunctionODE runs, snapshots and restores, but does not
    save. Subclass :class:`ODEModel` for a model that must be saved.

    Parameters
    ----------
    f : callable
        ``f(x, u, t, p) -> (B, n_x)``, the right-hand side.
    h : callable or None
        ``h(x, u, p) -> (B, n_outputs)``; ``None`` outputs every state.
    jac : callable or None
        ``jac(x, u, t, p) -> (B, n_x, n_x)``, ∂f/∂x; ``None``: finite differences.
    states : tuple of str
        State names.
    state_units : tuple of str or None
        Unit of each state; ``None`` leaves them unspecified.
    n_inputs : int
        Size of ``u`` (0: no input port).
    input_unit, output_unit : str or None
        Units of ``u`` and ``y``.
    n_outputs : int or None
        Size of ``y``; required with ``h``.
    params : dict of str to float or sequence, or None
        The physical parameters ``p`` (scalars or one value per asset).
    direct_feedthrough : bool
        Whether ``h`` uses ``u``.
    x0, **kwargs
        As for :class:`ODEModel` (``integrator``, ``substeps``, ``method``,
        ``rtol``, ``atol``, ``name``).

    Examples
    --------
    A first-order lag ``τ ẏ = u - y``, advanced by hand as an estimator would:

    >>> def lag(x, u, t, p):
    ...     return (u - x) / p["tau"][:, None]
    >>> model = FunctionODE(lag, states=("y",), n_inputs=1, params={"tau": [1.0, 2.0]}, substeps=20)
    >>> x = model.advance(np.zeros((2, 1)), np.ones((2, 1)), 0.0, 1.0, model.batch_params(2))
    >>> np.round(x, 6), np.round(1 - np.exp([-1.0, -0.5]), 6)
    (array([[0.632121],
           [0.393469]]), array([0.632121, 0.393469]))
    """

    def __init__(
        self,
        f,
        h=None,
        jac=None,
        states: tuple[str, ...] = ("x",),
        state_units: tuple[str | None, ...] | None = None,
        n_inputs: int = 0,
        input_unit: str | None = None,
        n_outputs: int | None = None,
        output_unit: str | None = None,
        params: dict[str, Any] | None = None,
        direct_feedthrough: bool = False,
        x0=0.0,
        **kwargs,
    ) -> None:
        super().__init__(x0, **kwargs)
        self.f = f
        self.h = h
        self.jac = jac
        self.states = states
        self.state_units = state_units
        self.n_inputs = n_inputs
        self.input_unit = input_unit
        self.n_outputs = n_outputs
        self.output_unit = output_unit
        self.params = params
        self.direct_feedthrough = direct_feedthrough

    @property
    def parameters(self) -> tuple[str, ...]:
        return tuple(self.params or {})

    def parameter_values(self) -> dict[str, Any]:
        return dict(self.params or {})

    def check_params(self) -> None:
        for param in ("f", "h", "jac"):
            value = getattr(self, param)
            if not (callable(value) or (value is None and param != "f")):
                raise invalid_param(self, param, "a callable" if param == "f" else "a callable or None", value)
        states = self.states
        if not (_is_sequence_of(states, str) and states and len(set(states)) == len(states)):
            raise invalid_param(self, "states", "a non-empty sequence of distinct names", states)
        if not (self.state_units is None or _is_sequence_of(self.state_units, (str, type(None)), len(states))):
            expected = f"None or one unit (str or None) per state, {len(states)} of them"
            raise invalid_param(self, "state_units", expected, self.state_units)
        for param in ("input_unit", "output_unit"):
            if not isinstance(getattr(self, param), (str, type(None))):
                raise invalid_param(self, param, "a unit (str) or None", getattr(self, param))
        check_number(self, "n_inputs", 0, integer=True)
        if self.n_outputs is not None:
            check_number(self, "n_outputs", 1, integer=True)
        elif self.h is not None:
            raise invalid_param(self, "n_outputs", "the size of y = h(x, u, p) when 'h' is given", None)
        if not (self.params is None or (isinstance(self.params, dict) and _is_sequence_of(list(self.params), str))):
            raise invalid_param(self, "params", "None or a dict from parameter name (str) to value", self.params)
        if not isinstance(self.direct_feedthrough, bool):
            raise invalid_param(self, "direct_feedthrough", "True or False", self.direct_feedthrough)
        super().check_params()

    def derivative(self, x, u, t, p):
        return self.f(x, u, t, p)

    def observe(self, x, u, p):
        return x if self.h is None else self.h(x, u, p)

    def observation_matrix(self):
        return np.eye(self.n_x) if self.h is None else None

    def jacobian(self, x, u, t, p):
        return None if self.jac is None else self.jac(x, u, t, p)
