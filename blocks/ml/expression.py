"""Formulas as text: a safe parser, a NumPy evaluator and symbolic derivatives.

A learned formula is saved as text (``"-3.998*x - 0.4003*v + u0"``) and read
back by :func:`parse`: Python's own parser (:func:`ast.parse`) reads the
text, and a whitelist walk turns its tree into :class:`Expression` nodes. No
text is handed to ``eval``, ``exec`` or ``compile``; a function is called
only when its name is in :data:`FUNCTIONS`; anything else in the text is an
:class:`ExpressionError` naming its position.

The grammar is Python's arithmetic on numbers and names::

    + - * /          as in Python
    ^ or **          power, right-associative; -x^2 is -(x^2), 2^-1 is 0.5
    -a, +a           signs, binding tighter than * and looser than ^
    f(a, ...)        a call of a function of FUNCTIONS
    ( )              grouping

Numbers are decimal (``2``, ``0.5``, ``.5``, ``1e-3``); names are ASCII
identifiers. :data:`FUNCTIONS` holds ``sin cos tan exp log sqrt abs tanh``
with NumPy's meaning, and gplearn's function set under gplearn's names:
``add sub mul neg max min`` and the protected ``div(a, b)`` (1 where
``|b| <= 0.001``) and ``inv(a)`` (0 where ``|a| <= 0.001``), so a gplearn
program reads back with the values gplearn computed.
"""

import ast
import math
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from twingraph import TwinGraphError
from twingraph.errors import quote

MAX_LENGTH = 10_000  # characters of one formula
MAX_NESTING = 50  # parentheses inside one another
MAX_DEPTH = 200  # levels of the formula tree; deeper text is an ExpressionError, never a RecursionError
PROTECTED = 0.001  # gplearn's threshold of its protected division and inverse

NOT_IN_GRAMMAR = re.compile(r"[^A-Za-z0-9_.+\-*/^(),\s]", re.ASCII)  # checked before Python's parser sees the text
SPACE = re.compile(r"\s", re.ASCII)  # whitespace and line breaks, read as spaces
NUMBER = re.compile(r"(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)
WORD = re.compile(r"[A-Za-z0-9_.]+|\*\*|.", re.ASCII | re.DOTALL)  # the token quoted in a syntax error


class ExpressionError(TwinGraphError, ValueError):
    """A formula that cannot be parsed, names an unknown function or variable, or has no derivative."""


def _protected_div(a, b):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.abs(b) > PROTECTED, np.divide(a, b), 1.0)


def _protected_inv(a):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.abs(a) > PROTECTED, np.divide(1.0, a), 0.0)


FUNCTIONS: dict[str, tuple[int, Callable]] = {
    "sin": (1, np.sin),
    "cos": (1, np.cos),
    "tan": (1, np.tan),
    "exp": (1, np.exp),
    "log": (1, np.log),
    "sqrt": (1, np.sqrt),
    "abs": (1, np.abs),
    "tanh": (1, np.tanh),
    "add": (2, np.add),
    "sub": (2, np.subtract),
    "mul": (2, np.multiply),
    "div": (2, _protected_div),
    "neg": (1, np.negative),
    "inv": (1, _protected_inv),
    "max": (2, np.maximum),
    "min": (2, np.minimum),
}
"""Functions a formula may call: name to (number of arguments, NumPy implementation)."""

OPERATORS: dict[str, Callable] = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide, "^": np.power}
PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2, "unary": 3, "^": 4, "atom": 5}


class Expression:
    """A node of a formula tree: :class:`Number`, :class:`Name`, :class:`Negate`, :class:`BinOp` or :class:`Call`.

    ``str(expr)`` is text that :func:`parse` reads back to a formula with
    bit-identical values (numbers are written with ``repr``).
    """

    precedence = PRECEDENCE["atom"]
    children: tuple["Expression", ...] = ()

    def evaluate(self, env: Mapping[str, np.ndarray]) -> np.ndarray | float:
        """The value for the variables in ``env`` (name to array, broadcast together)."""
        raise NotImplementedError

    def derivative(self, name: str) -> "Expression":
        """``∂self/∂name`` as a formula (lightly simplified); ExpressionError where a function has no derivative."""
        raise NotImplementedError

    def names(self) -> set[str]:
        """The variable names the formula uses."""
        return set()

    def to_text(self, digits: int | None = None) -> str:
        """The formula as text; ``digits`` significant digits per number, or all of them (None)."""
        raise NotImplementedError

    def __str__(self) -> str:
        return self.to_text()


@dataclass(frozen=True)
class Number(Expression):
    value: float

    @property
    def precedence(self) -> int:
        return PRECEDENCE["unary"] if math.copysign(1.0, self.value) < 0 else PRECEDENCE["atom"]

    def evaluate(self, env):
        return self.value

    def derivative(self, name):
        return ZERO

    def to_text(self, digits=None):
        return repr(self.value) if digits is None else f"{self.value:#.{digits}g}"


@dataclass(frozen=True)
class Name(Expression):
    id: str

    def evaluate(self, env):
        try:
            return env[self.id]
        except KeyError:
            raise ExpressionError(f"No value for the variable '{self.id}'; given {sorted(env)}.") from None

    def derivative(self, name):
        return ONE if name == self.id else ZERO

    def names(self):
        return {self.id}

    def to_text(self, digits=None):
        return self.id


@dataclass(frozen=True)
class Negate(Expression):
    arg: Expression
    precedence = PRECEDENCE["unary"]

    @property
    def children(self):
        return (self.arg,)

    def evaluate(self, env):
        return np.negative(self.arg.evaluate(env))

    def derivative(self, name):
        return negate(self.arg.derivative(name))

    def names(self):
        return self.arg.names()

    def to_text(self, digits=None):
        return "-" + _operand(self.arg, self.precedence + 1, digits)


@dataclass(frozen=True)
class BinOp(Expression):
    op: str
    left: Expression
    right: Expression

    @property
    def precedence(self) -> int:
        return PRECEDENCE[self.op]

    @property
    def children(self):
        return (self.left, self.right)

    def evaluate(self, env):
        return OPERATORS[self.op](self.left.evaluate(env), self.right.evaluate(env))

    def derivative(self, name):
        a, b = self.left, self.right
        da, db = a.derivative(name), b.derivative(name)
        if self.op == "+":
            return plus(da, db)
        if self.op == "-":
            return minus(da, db)
        if self.op == "*":
            return plus(times(da, b), times(a, db))
        if self.op == "/":
            return minus(divide(da, b), divide(times(a, db), times(b, b)))
        if isinstance(b, Number):  # a^c
            return times(times(b, power(a, Number(b.value - 1.0))), da)
        return times(self, plus(times(db, Call("log", (a,))), divide(times(b, da), a)))

    def names(self):
        return self.left.names() | self.right.names()

    def to_text(self, digits=None):
        op, left, right = self.op, self.left, self.right
        if op in "+-" and _leads_with_minus(right):  # a + -3*x reads a - 3*x, with the same value
            op, right = "-" if op == "+" else "+", _flip_sign(right)
        if op == "^":  # right-associative: a parenthesised left operand of equal precedence
            exponent = _operand(right, self.precedence, digits)
            if isinstance(right, Number) and float(right.value).is_integer() and 0 <= right.value < 1000:
                exponent = str(int(right.value))  # x^2 reads better than x^2.000 and parses to the same float
            return f"{_operand(left, self.precedence + 1, digits)}^{exponent}"
        left_text = _operand(left, self.precedence, digits)
        right_text = _operand(right, self.precedence + 1, digits, right_side=True)
        return f"{left_text} {op} {right_text}" if op in "+-" else f"{left_text}{op}{right_text}"


@dataclass(frozen=True)
class Call(Expression):
    func: str
    args: tuple[Expression, ...]

    @property
    def children(self):
        return self.args

    def evaluate(self, env):
        return FUNCTIONS[self.func][1](*(arg.evaluate(env) for arg in self.args))

    def derivative(self, name):
        rule = DERIVATIVES.get(self.func)
        if rule is None:
            raise ExpressionError(f"The function '{self.func}' has no derivative here (it is not smooth); "
                                  f"differentiable functions: {sorted(DERIVATIVES)}.")
        return rule(self.args, [arg.derivative(name) for arg in self.args])

    def names(self):
        return set().union(*(arg.names() for arg in self.args))

    def to_text(self, digits=None):
        return f"{self.func}({', '.join(arg.to_text(digits) for arg in self.args)})"


ZERO, ONE = Number(0.0), Number(1.0)


def _operand(node: Expression, least: int, digits: int | None, right_side: bool = False) -> str:
    """``node`` as an operand: parenthesised when it binds looser than ``least``, or is a sign on the right."""
    text = node.to_text(digits)
    if node.precedence < least or (right_side and node.precedence == PRECEDENCE["unary"]):
        return f"({text})"
    return text


def _leads_with_minus(node: Expression) -> bool:
    if isinstance(node, Number):
        return node.precedence == PRECEDENCE["unary"]
    if isinstance(node, BinOp) and node.op in "*/":
        return _leads_with_minus(node.left)
    return isinstance(node, Negate)


def _flip_sign(node: Expression) -> Expression:
    """``-node`` for a node that leads with a minus, with the same magnitude bit for bit."""
    if isinstance(node, Number):
        return Number(-node.value)
    if isinstance(node, BinOp):
        return BinOp(node.op, _flip_sign(node.left), node.right)
    return node.arg


def negate(a: Expression) -> Expression:
    """``-a``, folding numbers and double negation."""
    if isinstance(a, Number):
        return Number(-a.value)
    return a.arg if isinstance(a, Negate) else Negate(a)


def plus(a: Expression, b: Expression) -> Expression:
    """``a + b``, dropping zeros and folding numbers."""
    if isinstance(a, Number) and isinstance(b, Number):
        return Number(a.value + b.value)
    if a == ZERO:
        return b
    return a if b == ZERO else BinOp("+", a, b)


def minus(a: Expression, b: Expression) -> Expression:
    """``a - b``, dropping zeros and folding numbers."""
    if isinstance(a, Number) and isinstance(b, Number):
        return Number(a.value - b.value)
    if b == ZERO:
        return a
    return negate(b) if a == ZERO else BinOp("-", a, b)


def times(a: Expression, b: Expression) -> Expression:
    """``a * b``, dropping ones, absorbing zeros and folding numbers."""
    if isinstance(a, Number) and isinstance(b, Number):
        return Number(a.value * b.value)
    if ZERO in (a, b):
        return ZERO
    if a == ONE:
        return b
    return a if b == ONE else BinOp("*", a, b)


def divide(a: Expression, b: Expression) -> Expression:
    """``a / b``, simplifying ``0 / b`` and ``a / 1``."""
    if a == ZERO:
        return ZERO
    return a if b == ONE else BinOp("/", a, b)


def power(a: Expression, b: Expression) -> Expression:
    """``a ^ b``, simplifying the exponents 0 and 1."""
    if b == ZERO:
        return ONE
    return a if b == ONE else BinOp("^", a, b)


def _call(func: str, *args: Expression) -> Expression:
    return Call(func, args)


DERIVATIVES: dict[str, Callable[[Sequence[Expression], list[Expression]], Expression]] = {
    "sin": lambda a, d: times(_call("cos", a[0]), d[0]),
    "cos": lambda a, d: times(negate(_call("sin", a[0])), d[0]),
    "tan": lambda a, d: times(plus(ONE, power(_call("tan", a[0]), Number(2.0))), d[0]),
    "exp": lambda a, d: times(_call("exp", a[0]), d[0]),
    "log": lambda a, d: divide(d[0], a[0]),
    "sqrt": lambda a, d: divide(d[0], times(Number(2.0), _call("sqrt", a[0]))),
    "tanh": lambda a, d: times(minus(ONE, power(_call("tanh", a[0]), Number(2.0))), d[0]),
    "add": lambda a, d: plus(d[0], d[1]),
    "sub": lambda a, d: minus(d[0], d[1]),
    "mul": lambda a, d: plus(times(d[0], a[1]), times(a[0], d[1])),
    "neg": lambda a, d: negate(d[0]),
}
"""Chain rules ``(args, their derivatives) -> derivative``; functions without one (abs, div, inv, max, min) have
kinks or protected branches, and a model using them falls back to finite differences."""


BINARY_OPERATORS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "^"}


class _Reader:
    """Reads one formula: its characters and parentheses, then Python's parse tree through a whitelist."""

    def __init__(self, text: str, variables: frozenset[str] | None) -> None:
        self.text = text
        self.variables = variables
        lead = len(text) - len(text.lstrip())  # Python reads leading spaces as an indent
        self.source = SPACE.sub(" ", text[lead:]).replace("^", "**")  # ^ is the power; one line for ast
        self.origin = [i for i in range(lead, len(text)) for _ in range(2 if text[i] == "^" else 1)] + [len(text)]

    def error(self, message: str) -> ExpressionError:
        shown = self.text if len(self.text) <= 80 else self.text[:77] + "..."
        return ExpressionError(f"Cannot parse the formula {shown!r}: {message}.")

    def read(self) -> Expression:
        bad = NOT_IN_GRAMMAR.search(self.text)
        if bad:
            raise self.error(f"unexpected character {bad.group()!r} at position {bad.start()}")
        if not self.text.strip():
            raise self.error("it is empty")
        if len(self.text) > MAX_LENGTH:
            raise self.error(f"it is longer than {MAX_LENGTH} characters")
        level = 0
        for position, c in enumerate(self.text):
            level += {"(": 1, ")": -1}.get(c, 0)
            if level > MAX_NESTING:
                raise self.error(f"it is nested more than {MAX_NESTING} levels deep")
            if level < 0:
                raise self.error(f"unmatched ')' at position {position}")
        if level:
            raise self.error(f"expected ')' at position {len(self.text)}, found the end")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", SyntaxWarning)  # "1or x": refused below, no need to warn
                tree = ast.parse(self.source, mode="eval")
        except SyntaxError as exc:
            at = (exc.offset or 0) - 1
            if not 0 <= at < len(self.source):
                raise self.error(f"{exc.msg} at position {len(self.text)}, found the end") from None
            found = WORD.match(self.text, self.origin[at]).group()
            raise self.error(f"{exc.msg} at position {self.origin[at]}, found {found!r}") from None
        except (MemoryError, RecursionError):  # how Python's parser refuses deep nesting
            raise self.error(f"its tree is more than {MAX_DEPTH} levels deep") from None
        return self.build(tree.body, 1)

    def build(self, node: ast.expr, level: int) -> Expression:
        if level > MAX_DEPTH:
            raise self.error(f"its tree is more than {MAX_DEPTH} levels deep")
        at = self.origin[node.col_offset]
        if isinstance(node, ast.Constant) and NUMBER.fullmatch(text := self.segment(node)):
            if not math.isfinite(float(text)):
                raise self.error(f"the number {text} at position {at} is not finite")
            return Number(float(text))
        if isinstance(node, ast.Name):
            if node.id in FUNCTIONS:
                raise self.error(f"the function '{node.id}' at position {at} must be called, e.g. {node.id}(x)")
            if self.variables is not None and node.id not in self.variables:
                raise self.error(f"unknown name '{node.id}' at position {at}; the variables are "
                                 f"{sorted(self.variables)}")
            return Name(node.id)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
            operand = self.build(node.operand, level + 1)
            return operand if isinstance(node.op, ast.UAdd) else negate(operand)
        if isinstance(node, ast.BinOp) and type(node.op) in BINARY_OPERATORS:
            left, right = self.build(node.left, level + 1), self.build(node.right, level + 1)
            return BinOp(BINARY_OPERATORS[type(node.op)], left, right)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
            func = node.func.id
            if func not in FUNCTIONS:
                raise self.error(f"unknown function '{func}' at position {at}; the functions are {sorted(FUNCTIONS)}")
            arity = FUNCTIONS[func][0]
            if len(node.args) != arity:
                raise self.error(f"'{func}' takes {arity} argument{'s' if arity > 1 else ''}, given {len(node.args)}")
            return Call(func, tuple(self.build(arg, level + 1) for arg in node.args))
        text = self.segment(node)
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise self.error(f"{shown!r} at position {at} is not a number, a name, an operation (+ - * / ^ **) "
                         f"or a call of a function")

    def segment(self, node: ast.expr) -> str:
        """The text of ``node`` as given (``^`` where the text has it)."""
        return self.text[self.origin[node.col_offset] : self.origin[node.end_col_offset]]


def parse(text: str, variables: Sequence[str] | None = None) -> Expression:
    """Read a formula; ``variables`` lists the names it may use (None: any name that is not a function).

    Raises
    ------
    ExpressionError
        For anything that is not a formula of the grammar, with the position of the problem.

    Examples
    --------
    >>> f = parse("-4*x - 0.4*v + sin(u)", variables=["x", "v", "u"])
    >>> f.evaluate({"x": np.array([1.0]), "v": np.array([2.0]), "u": np.array([0.0])})
    array([-4.8])
    >>> print(f.derivative("x"), "|", f.derivative("u"))
    -4.0 | cos(u)
    >>> try:
    ...     parse("__import__('os')")
    ... except ExpressionError as exc:
    ...     print(exc)
    Cannot parse the formula "__import__('os')": unexpected character "'" at position 11.
    """
    if not isinstance(text, str):
        raise ExpressionError(f"A formula must be a str. Got {type(text).__name__} {quote(text)}.")
    return _Reader(text, None if variables is None else frozenset(variables)).read()
