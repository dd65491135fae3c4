"""Formulas as text: a safe parser, a NumPy evaluator and symbolic derivatives.

A learned formula is saved as text (``"-3.998*x - 0.4003*v + u0"``) and read
back by :func:`parse`, a hand-written recursive-descent parser: it builds a
small tree of :class:`Expression` nodes and never hands text to ``eval``,
``exec`` or ``compile``. A function is called only when its name is in
:data:`FUNCTIONS`; anything else in the text is an :class:`ExpressionError`.

Grammar (``^`` and ``**`` are the same right-associative power; unary minus
binds tighter than ``*`` and looser than ``^``, as in Python)::

    expression := term (("+" | "-") term)*
    term       := unary (("*" | "/") unary)*
    unary      := ("-" | "+") unary | power
    power      := atom (("^" | "**") unary)?
    atom       := number | name | name "(" expression ("," expression)* ")" | "(" expression ")"

Numbers are decimal (``2``, ``0.5``, ``.5``, ``1e-3``); names are ASCII
identifiers. :data:`FUNCTIONS` holds ``sin cos tan exp log sqrt abs tanh``
with NumPy's meaning, and gplearn's function set under gplearn's names:
``add sub mul neg max min`` and the protected ``div(a, b)`` (1 where
``|b| <= 0.001``) and ``inv(a)`` (0 where ``|a| <= 0.001``), so a gplearn
program reads back with the values gplearn computed.
"""

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from twingraph import TwinGraphError

MAX_NESTING = 50  # parentheses, calls, signs and powers inside one another while parsing
MAX_DEPTH = 200  # levels of the formula tree; deeper text is an ExpressionError, never a RecursionError
PROTECTED = 0.001  # gplearn's threshold of its protected division and inverse

TOKEN = re.compile(
    r"\s*(?:(?P<number>(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op>\*\*|[-+*/^(),]))",
    re.ASCII,
)


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


class _Parser:
    """Recursive descent over the tokens of one formula (see the module docstring for the grammar)."""

    def __init__(self, text: str, variables: frozenset[str] | None) -> None:
        self.text = text
        self.variables = variables
        self.tokens = self._tokenize(text)
        self.i = 0
        self.depth = 0

    def _tokenize(self, text: str) -> list[tuple[str, str, int]]:
        tokens, position = [], 0
        while position < len(text):
            match = TOKEN.match(text, position)
            if match is None:
                rest = text[position:].lstrip()
                if not rest:
                    break
                where = len(text) - len(rest)
                raise self.error(f"unexpected character {rest[0]!r} at position {where}")
            kind = match.lastgroup
            tokens.append((kind, match.group(kind), match.start(kind)))
            position = match.end()
        tokens.append(("end", "", len(text)))
        return tokens

    def error(self, message: str) -> ExpressionError:
        shown = self.text if len(self.text) <= 80 else self.text[:77] + "..."
        return ExpressionError(f"Cannot parse the formula {shown!r}: {message}.")

    def peek(self) -> tuple[str, str, int]:
        return self.tokens[self.i]

    def take(self, value: str | None = None) -> tuple[str, str, int]:
        token = self.tokens[self.i]
        if value is not None and token[1] != value:
            raise self.error(f"expected {value!r} at position {token[2]}, found {self._describe(token)}")
        self.i += 1
        return token

    @staticmethod
    def _describe(token: tuple[str, str, int]) -> str:
        return "the end" if token[0] == "end" else repr(token[1])

    def parse(self) -> Expression:
        if self.peek()[0] == "end":
            raise self.error("it is empty")
        node = self.expression()
        token = self.peek()
        if token[0] != "end":
            raise self.error(f"unexpected {self._describe(token)} at position {token[2]}")
        return node

    def nested(self, rule: Callable[[], Expression]) -> Expression:
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise self.error(f"it is nested more than {MAX_NESTING} levels deep")
        try:
            return rule()
        finally:
            self.depth -= 1

    def expression(self) -> Expression:
        node = self.term()
        while self.peek()[1] in ("+", "-"):
            op = self.take()[1]
            node = BinOp(op, node, self.term())
        return node

    def term(self) -> Expression:
        node = self.unary()
        while self.peek()[1] in ("*", "/"):
            op = self.take()[1]
            node = BinOp(op, node, self.unary())
        return node

    def unary(self) -> Expression:
        value = self.peek()[1]
        if value in ("-", "+"):
            self.take()
            operand = self.nested(self.unary)
            if value == "+":
                return operand
            return Number(-operand.value) if isinstance(operand, Number) else Negate(operand)
        return self.power()

    def power(self) -> Expression:
        base = self.atom()
        if self.peek()[1] in ("^", "**"):
            self.take()
            return BinOp("^", base, self.nested(self.unary))
        return base

    def atom(self) -> Expression:
        kind, value, position = self.take()
        if kind == "number":
            number = float(value)
            if not math.isfinite(number):
                raise self.error(f"the number {value} at position {position} is not finite")
            return Number(number)
        if kind == "name":
            if self.peek()[1] == "(":
                return self.call(value, position)
            if value in FUNCTIONS:
                raise self.error(f"the function '{value}' at position {position} must be called, e.g. {value}(x)")
            if self.variables is not None and value not in self.variables:
                raise self.error(f"unknown name '{value}' at position {position}; the variables are "
                                 f"{sorted(self.variables)}")
            return Name(value)
        if value == "(":
            node = self.nested(self.expression)
            self.take(")")
            return node
        raise self.error(f"expected a number, a name, '(' or '-' at position {position}, found "
                         f"{self._describe((kind, value, position))}")

    def call(self, func: str, position: int) -> Expression:
        if func not in FUNCTIONS:
            raise self.error(f"unknown function '{func}' at position {position}; the functions are "
                             f"{sorted(FUNCTIONS)}")
        self.take("(")
        args = [self.nested(self.expression)]
        while self.peek()[1] == ",":
            self.take()
            args.append(self.nested(self.expression))
        self.take(")")
        arity = FUNCTIONS[func][0]
        if len(args) != arity:
            raise self.error(f"'{func}' takes {arity} argument{'s' if arity > 1 else ''}, given {len(args)}")
        return Call(func, tuple(args))


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
        raise ExpressionError(f"A formula must be a str. Got {type(text).__name__} {text!r} instead.")
    allowed = None if variables is None else frozenset(variables)
    parser = _Parser(text, allowed)
    node = parser.parse()
    if depth(node) > MAX_DEPTH:
        raise parser.error(f"its tree is more than {MAX_DEPTH} levels deep")
    return node


def depth(node: Expression) -> int:
    """Levels of the formula tree (a number or a name: 1), counted without recursion."""
    deepest, stack = 0, [(node, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in node.children)
    return deepest
