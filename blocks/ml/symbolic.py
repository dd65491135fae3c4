"""A symbolic ODE: each state derivative a readable formula, learned by genetic programming.

:class:`SymbolicODE` holds its right-hand sides as text (``"-4.0*x - 0.4*v"``),
so a saved graph carries the formulas themselves; loading parses them with
:func:`~blocks.ml.expression.parse` (no ``eval``, no gplearn).
:func:`train_symbolic_ode` learns them from derivative targets: gplearn's
``SymbolicRegressor`` proposes the structure of each formula, which is
expanded into a sum of terms whose coefficients are refit by sparse least
squares.
"""

import re
from dataclasses import dataclass

import numpy as np

from blocks.physics.ode import ODEModel
from twingraph._optional import require
from twingraph.errors import ParamError, invalid_param

from .expression import (
    FUNCTIONS,
    PROTECTED,
    BinOp,
    Call,
    Expression,
    ExpressionError,
    Name,
    Negate,
    Number,
    parse,
)

GP_FUNCTIONS = ("add", "sub", "mul", "div", "neg", "inv", "max", "min", "abs", "sin", "cos", "tan")
"""gplearn functions a search may use: those whose gplearn meaning the formula evaluator shares."""

MAX_POWER = 4  # x^n with a constant n up to this is expanded into a product of terms
MAX_TERMS = 64  # an expansion with more terms is kept whole, as one term with one coefficient
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)


@dataclass(frozen=True)
class _Compiled:
    """The parsed formulas of a SymbolicODE, for the params in ``key``."""

    key: tuple
    rhs: tuple[Expression, ...]
    outputs: tuple[Expression, ...] | None
    jacobian: tuple[tuple[Expression, ...], ...] | None


class SymbolicODE(ODEModel):
    """Continuous-time model whose right-hand sides are formulas: ``dx_i/dt = f_i(x, u)``.

    The formulas are params (text), so the model saves to and loads from a
    graph file as it reads, and loading needs neither gplearn nor code
    execution. Learn them with :func:`train_symbolic_ode` (or
    :class:`~blocks.ml.Learner` with ``method="symbolic"``); read them with
    :meth:`equations`. Like every ODE model it goes into an estimator: its
    :meth:`jacobian` is the symbolic derivative of the formulas.

    Parameters
    ----------
    states : tuple of str
        State names; the formulas use them as variables.
    formulas : tuple of str
        One formula per state, ``dx_i/dt`` [state unit / s], in the grammar of
        :mod:`blocks.ml.expression` over the state and input names. The
        default is the unit harmonic oscillator.
    input_names : tuple of str
        Names of the inputs ``u``; their number is the input size (0: no input port).
    outputs : tuple of str or None
        Formulas of the outputs ``y``; None outputs every state, ``y = x``.
    x0, **kwargs
        As for :class:`~blocks.physics.ode.ODEModel` (``integrator``,
        ``substeps``, ``method``, ``rtol``, ``atol``, ``name``).

    Ports
    -----
    u (in) : shape (len(input_names),); absent without inputs.
    y (out) : shape (len(outputs),), or the state when ``outputs`` is None.
    x (out) : shape (len(states),), the state.

    Notes
    -----
    ::

        dx_i/dt   = f_i(x, u)               formulas[i]
        y_j       = h_j(x, u)               outputs[j]
        ∂f/∂x[i, k] = ∂f_i/∂x_k             symbolic derivatives, or None (finite
                                            differences) when a formula uses abs,
                                            div, inv, max or min

    Examples
    --------
    A forced, damped oscillator written by hand:

    >>> model = SymbolicODE(states=("x", "v"), formulas=("v", "-4*x - 0.4*v + F"), input_names=("F",))
    >>> model.equations()
    ['dx/dt = v', 'dv/dt = -4.000*x - 0.4000*v + F']
    >>> x = np.array([[1.0, 0.0]])
    >>> model.derivative(x, np.array([[2.0]]), 0.0, {})
    array([[ 0., -2.]])
    >>> model.jacobian(x, np.zeros((1, 1)), 0.0, {})[0]
    array([[ 0. ,  1. ],
           [-4. , -0.4]])
    """

    def __init__(
        self,
        states: tuple[str, ...] = ("x", "v"),
        formulas: tuple[str, ...] = ("v", "-x"),
        input_names: tuple[str, ...] = (),
        outputs: tuple[str, ...] | None = None,
        x0=0.0,
        **kwargs,
    ) -> None:
        super().__init__(x0, **kwargs)
        self.states = states
        self.formulas = formulas
        self.input_names = input_names
        self.outputs = outputs

    @property
    def n_inputs(self) -> int:
        return len(self.input_names)

    @property
    def n_outputs(self) -> int | None:
        return None if self.outputs is None else len(self.outputs)

    @property
    def direct_feedthrough(self) -> bool:
        """Whether an output formula uses an input."""
        outputs = self._compile().outputs or ()
        return any(set(self.input_names) & f.names() for f in outputs)

    @property
    def variables(self) -> tuple[str, ...]:
        """The names the formulas may use: the states, then the inputs."""
        return (*self.states, *self.input_names)

    def check_params(self) -> None:
        self._compile()
        super().check_params()

    def _check_names(self, param: str) -> None:
        names = getattr(self, param)
        valid = (
            isinstance(names, (tuple, list))
            and all(isinstance(n, str) and _IDENTIFIER.fullmatch(n) and n not in FUNCTIONS for n in names)
            and len(set(names)) == len(names)
            and (param != "states" or len(names) > 0)
        )
        if not valid:
            raise invalid_param(self, param, "a sequence of distinct names (letters, digits, '_'; not a function "
                                "name)" + (", at least one" if param == "states" else ""), names)

    def _parse_all(self, param: str, expected: int | None) -> tuple[Expression, ...]:
        texts = getattr(self, param)
        if not isinstance(texts, (tuple, list)) or not all(isinstance(f, str) for f in texts) or (
            expected is not None and len(texts) != expected
        ):
            count = f"{expected} formulas (one per state {list(self.states)})" if expected else "formulas"
            raise invalid_param(self, param, f"a sequence of {count} as text", texts)
        parsed = []
        for i, text in enumerate(texts):
            try:
                parsed.append(parse(text, self.variables))
            except ExpressionError as exc:
                raise ParamError(f"The '{param}' parameter of {type(self).__name__} '{self.name}' has a bad "
                                 f"formula at index {i}: {exc}") from None
        return tuple(parsed)

    def _compile(self) -> _Compiled:
        """The parsed formulas and their derivatives, cached until a param changes; checks the params."""
        key = (repr(self.states), repr(self.input_names), repr(self.formulas), repr(self.outputs))
        cached = self.__dict__.get("_compiled")
        if cached is not None and cached.key == key:
            return cached
        self._check_names("states")
        self._check_names("input_names")
        if set(self.states) & set(self.input_names):
            raise invalid_param(self, "input_names", f"names other than the states {list(self.states)}",
                                self.input_names)
        rhs = self._parse_all("formulas", len(self.states))
        outputs = None if self.outputs is None else self._parse_all("outputs", None)
        if outputs is not None and not outputs:
            raise invalid_param(self, "outputs", "None or at least one formula", self.outputs)
        try:
            jacobian = tuple(tuple(f.derivative(s) for s in self.states) for f in rhs)
        except ExpressionError:
            jacobian = None
        self.__dict__["_compiled"] = compiled = _Compiled(key, rhs, outputs, jacobian)
        return compiled

    def _env(self, x: np.ndarray, u: np.ndarray) -> dict[str, np.ndarray]:
        return {**{s: x[:, i] for i, s in enumerate(self.states)},
                **{n: u[:, j] for j, n in enumerate(self.input_names)}}

    @staticmethod
    def _columns(formulas, env, batch: int) -> np.ndarray:
        return np.stack([np.broadcast_to(np.asarray(f.evaluate(env), dtype=float), (batch,)) for f in formulas],
                        axis=1)

    def derivative(self, x, u, t, p):
        return self._columns(self._compile().rhs, self._env(x, u), len(x))

    def observe(self, x, u, p):
        outputs = self._compile().outputs
        return x if outputs is None else self._columns(outputs, self._env(x, u), len(x))

    def jacobian(self, x, u, t, p):
        """``∂f/∂x``, ``(B, n_x, n_x)``, from the symbolic derivatives; None where a formula has none."""
        rows = self._compile().jacobian
        if rows is None:
            return None
        env = self._env(x, u)
        return np.stack([self._columns(row, env, len(x)) for row in rows], axis=1)

    def equations(self, digits: int = 4) -> list[str]:
        """The model as readable equations, ``"dx/dt = ..."``, numbers to ``digits`` significant digits."""
        rhs = self._compile().rhs
        return [f"d{state}/dt = {f.to_text(digits)}" for state, f in zip(self.states, rhs, strict=True)]


def train_symbolic_ode(model: SymbolicODE, X, y, *, population_size: int = 500, generations: int = 10,
                       function_set: tuple[str, ...] = ("add", "sub", "mul"), parsimony: float = 0.001,
                       threshold: float = 0.01, max_rows: int = 1000, seed: int = 0) -> dict[str, list]:
    """Learn a :class:`SymbolicODE`'s formulas from derivative targets: ``f_i(x, u) ≈ dx_i/dt``.

    For each state, gplearn's ``SymbolicRegressor`` searches a formula on at
    most ``max_rows`` rows. Its best program is expanded into a sum of terms
    (products of variables and of the non-polynomial calls it contains); every
    variable alone joins them as a candidate, since the search's parsimony
    pressure tends to drop a linear term of small share (a light damping).
    The coefficients of the terms are refit on every row by least squares
    with backward elimination (:func:`sparse_least_squares`): a term whose
    share of the target's RMS is below ``threshold`` is dropped.

    Parameters
    ----------
    model : SymbolicODE
        Its ``formulas`` are set; its states and inputs name the columns of ``X``.
    X : array_like, shape (N, n_x + n_u)
        Rows ``[x, u]`` as :func:`~blocks.ml.prepare_ode_data_from_timeseries` makes them.
    y : array_like, shape (N, n_x)
        Targets ``dx/dt``.
    population_size, generations : int
        Size of gplearn's population and number of generations.
    function_set : tuple of str
        Functions the search may use, from :data:`GP_FUNCTIONS`.
    parsimony : float
        gplearn's penalty per program node, which keeps formulas short.
    threshold : float
        Least share of the target's RMS a term must carry to stay [-].
    max_rows : int
        Rows given to the search (drawn at random with ``seed``); the refit uses all rows.
    seed : int
        Seed of the row draw and of gplearn.

    Returns
    -------
    dict
        ``{"programs": [...], "formulas": [...], "r2": [...]}``: gplearn's raw
        programs, the refit formulas and their coefficient of determination on
        all rows, one per state.
    """
    genetic = require("gplearn.genetic", "symbolic", "symbolic regression")
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    variables = model.variables
    if X.ndim != 2 or X.shape[1] != len(variables) or y.shape != (len(X), len(model.states)):
        raise ValueError(f"{type(model).__name__} '{model.name}' trains on X of shape (N, {len(variables)}) "
                         f"(columns {list(variables)}) and y of shape (N, {len(model.states)}). Got {X.shape} and "
                         f"{y.shape}.")
    unknown = [f for f in function_set if f not in GP_FUNCTIONS]
    if isinstance(function_set, str) or unknown or not function_set:
        raise ValueError(f"The function_set must hold functions from {list(GP_FUNCTIONS)}. Got {function_set!r}.")
    rows = np.sort(np.random.default_rng(seed).permutation(len(X))[:max_rows])
    env = {name: X[:, i] for i, name in enumerate(variables)}
    report = {"programs": [], "formulas": [], "r2": []}
    for target in y.T:
        spread = float(np.mean(np.abs(target - target.mean())))
        search = genetic.SymbolicRegressor(
            population_size=population_size, generations=generations, function_set=function_set,
            parsimony_coefficient=parsimony, stopping_criteria=1e-3 * spread, feature_names=list(variables),
            random_state=seed, n_jobs=1,
        )
        search.fit(X[rows], target[rows])
        formula, r2 = _refit(_from_program(search._program.program, variables), env, target, threshold, variables)
        report["programs"].append(str(search._program))
        report["formulas"].append(formula)
        report["r2"].append(r2)
    model.formulas = tuple(report["formulas"])
    model.check_params()
    return report


def _refit(program: Expression, env: dict[str, np.ndarray], target: np.ndarray, threshold: float,
           variables: tuple[str, ...]) -> tuple[str, float]:
    """The formula of ``program``'s terms and the linear terms, refit to ``target``; and its R² [-]."""
    terms = expand(program)
    for name in variables:  # every linear term is a candidate: a parsimonious search drops small ones
        terms = _sum(terms, _term(0.0, (Name(name),)))
    columns = np.stack([_values(factors, env, len(target)) for _, factors in terms.values()], axis=1)
    coefficients = sparse_least_squares(columns, target, threshold)
    total = float(np.sum((target - target.mean()) ** 2))
    residual = float(np.sum((target - columns @ coefficients) ** 2))
    return _formula(coefficients, terms, variables), 1.0 - residual / total if total > 0 else 1.0


def _from_program(program: list, variables: tuple[str, ...]) -> Expression:
    """A gplearn program (prefix list of functions, feature indices and constants) as a formula tree."""
    nodes = iter(program)

    def build() -> Expression:
        node = next(nodes)
        if isinstance(node, (int, np.integer)):
            return Name(variables[node])
        if isinstance(node, (float, np.floating)):
            return Number(float(node))
        return Call(node.name, tuple(build() for _ in range(node.arity)))

    return build()


Terms = dict[tuple[str, ...], tuple[float, tuple[Expression, ...]]]


def _term(coefficient: float, factors: tuple[Expression, ...] = ()) -> Terms:
    factors = tuple(sorted(factors, key=str))
    return {tuple(map(str, factors)): (coefficient, factors)}


def _scale(terms: Terms, c: float) -> Terms:
    return {key: (a * c, factors) for key, (a, factors) in terms.items()}


def _sum(a: Terms, b: Terms) -> Terms:
    total = dict(a)
    for key, (c, factors) in b.items():
        total[key] = (total[key][0] + c, factors) if key in total else (c, factors)
    return total


def _product(a: Terms, b: Terms) -> Terms:
    total: Terms = {}
    for ca, fa in a.values():
        for cb, fb in b.values():
            total = _sum(total, _term(ca * cb, fa + fb))
    if len(total) > MAX_TERMS:
        raise OverflowError
    return total


def expand(expr: Expression) -> Terms:
    """``expr`` as a sum of coefficients times products of factors, like terms merged.

    Sums, differences, negation, products, division by a number and integer
    powers up to :data:`MAX_POWER` are multiplied out; any other call or
    operation is one factor. An expansion past :data:`MAX_TERMS` terms keeps
    ``expr`` whole as one factor.
    """
    try:
        return _expand(expr)
    except OverflowError:
        return _term(1.0, (expr,))


def _expand(e: Expression) -> Terms:
    if isinstance(e, Number):
        return _term(e.value)
    op, args = _operation(e)
    if op in ("+", "-"):
        return _sum(_expand(args[0]), _scale(_expand(args[1]), 1.0 if op == "+" else -1.0))
    if op == "neg":
        return _scale(_expand(args[0]), -1.0)
    if op == "*":
        return _product(_expand(args[0]), _expand(args[1]))
    if op in ("/", "div") and isinstance(args[1], Number) and abs(args[1].value) > PROTECTED:
        return _scale(_expand(args[0]), 1.0 / args[1].value)
    if op == "div" and isinstance(args[1], Number):
        return _term(1.0)  # gplearn's protected division by a near-zero number is 1
    if op == "^" and isinstance(args[1], Number) and args[1].value in range(MAX_POWER + 1):
        result = _term(1.0)
        for _ in range(int(args[1].value)):
            result = _product(result, _expand(args[0]))
        return result
    return _term(1.0, (e,))


def _operation(e: Expression) -> tuple[str | None, tuple[Expression, ...]]:
    """The operation of a node as an operator symbol (gplearn's add, sub and mul read as + - *), and its operands."""
    if isinstance(e, BinOp):
        return e.op, (e.left, e.right)
    if isinstance(e, Negate):
        return "neg", (e.arg,)
    if isinstance(e, Call):
        return {"add": "+", "sub": "-", "mul": "*"}.get(e.func, e.func), e.args
    return None, ()


def _values(factors: tuple[Expression, ...], env: dict[str, np.ndarray], rows: int) -> np.ndarray:
    """Values of the product of ``factors`` (one term of :func:`expand`), ``(rows,)``."""
    value = np.ones(rows)
    for factor in factors:
        value = value * factor.evaluate(env)
    return value


def sparse_least_squares(columns: np.ndarray, target: np.ndarray, threshold: float) -> np.ndarray:
    """Least-squares coefficients of the fewest columns that explain ``target``, the others zero.

    Backward elimination: starting from every column, the term whose removal
    (the others refit) raises the mean squared residual least is removed while
    that rise stays below ``threshold² mean(target²)``, i.e. while the term
    carries less than ``threshold`` of the target's RMS. Unlike thresholding
    coefficients, this also removes terms that only cancel one another.
    Columns are scaled to unit RMS for the solves.

    Examples
    --------
    >>> x = np.linspace(-1.0, 1.0, 50)
    >>> columns = np.stack([x, x**2, np.ones(50), x - 1e-3 * x**2], axis=1)
    >>> np.round(sparse_least_squares(columns, 3 * x + 1e-4 * x**2, 0.01), 6) + 0.0
    array([3., 0., 0., 0.])
    """
    rms = np.sqrt(np.mean(columns**2, axis=0))
    keep = rms > 0
    floor = threshold**2 * np.mean(target**2)

    def fit(mask):
        coefficients = np.zeros(columns.shape[1])
        if mask.any():
            coefficients[mask] = np.linalg.lstsq(columns[:, mask] / rms[mask], target, rcond=None)[0] / rms[mask]
        return coefficients, np.mean((target - columns @ coefficients) ** 2)

    coefficients, error = fit(keep)
    while keep.any():
        trials = []
        for j in np.flatnonzero(keep):
            mask = keep.copy()
            mask[j] = False
            trials.append((*fit(mask), mask))
        fewer, fewer_error, mask = min(trials, key=lambda trial: trial[1])
        if fewer_error - error >= floor:
            break
        coefficients, error, keep = fewer, fewer_error, mask
    return coefficients


def _formula(coefficients: np.ndarray, terms: Terms, variables: tuple[str, ...]) -> str:
    """The text ``c1*m1 + c2*m2 + ...`` of the nonzero terms, in the order of the variables, constant last."""
    order = {name: i for i, name in enumerate(variables)}

    def rank(factor: Expression) -> tuple[int, str]:
        return (order.get(factor.id, len(order)) if isinstance(factor, Name) else len(order), str(factor))

    def position(item) -> tuple:
        _, (_, factors) = item
        return (not factors, len(factors), sorted(map(rank, factors)))

    formula = None
    for (_, (_, factors)), c in sorted(zip(terms.items(), coefficients, strict=True), key=lambda z: position(z[0])):
        if c == 0.0:
            continue
        term = Number(float(c))
        for factor in _powers(sorted(factors, key=rank)):
            term = BinOp("*", term, factor)
        formula = term if formula is None else BinOp("+", formula, term)
    return "0.0" if formula is None else str(formula)


def _powers(factors: list[Expression]) -> list[Expression]:
    """Runs of equal factors as powers: ``[x, x, v]`` reads ``[x^2, v]``."""
    grouped: list[list] = []
    for factor in factors:
        if grouped and grouped[-1][0] == factor:
            grouped[-1][1] += 1
        else:
            grouped.append([factor, 1])
    return [f if n == 1 else BinOp("^", f, Number(float(n))) for f, n in grouped]
