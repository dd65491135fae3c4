"""The formula parser: safe on any text, exact text round trip, derivatives against finite differences."""

import ast
import builtins
import contextlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from blocks.ml.expression import (
    FUNCTIONS,
    MAX_DEPTH,
    MAX_LENGTH,
    BinOp,
    Call,
    ExpressionError,
    Name,
    Negate,
    Number,
    parse,
)

VARIABLES = ("x", "v", "u")
POINTS = {"x": np.array([0.7, -1.3, 2.1, 0.05]), "v": np.array([0.2, -0.5, 1.5, -2.0]),
          "u": np.array([1.1, 0.3, -0.4, 3.0])}


@given(st.text(max_size=60))
@settings(max_examples=300)
def test_any_text_is_a_formula_or_an_expression_error(text):
    try:
        parse(text)
    except ExpressionError as exc:
        assert str(exc).startswith(("Cannot parse the formula", "A formula must be"))


@given(st.text(alphabet="xvu0123456789.e+-*/^(),_ sincoexplgqrtabdmhvw'[]:=;", max_size=40))
@settings(max_examples=500)
def test_formula_like_text_is_a_formula_or_an_expression_error(text):
    with contextlib.suppress(ExpressionError):
        parse(text, VARIABLES)


ATTACKS = [
    "__import__('os').system('echo hacked')",
    "__import__(os)",
    "x.__class__",
    "().__class__.__bases__[0]",
    "eval(x)",
    "exec",
    "lambda: 0",
    "[x for x in ()]",
    "open(x)",
    "x; import os",
    "globals()",
    "x if v else u",
    "y",
    "sin",
    "1e999",
    "(" * 200 + "x" + ")" * 200,
    "-" * 500 + "x",
    "-" * 5000 + "x",
    "x**" * 3000 + "x",
    "+".join(["x"] * (MAX_DEPTH + 5)),
    "",
    "   ",
    "\x00",
]


def test_code_is_never_executed_and_is_refused_with_a_clear_error(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("the parser executed code")

    def tree_only(source, filename, mode, flags=0, *args, **kwargs):  # ast.parse: a syntax tree, never code
        if not flags & ast.PyCF_ONLY_AST:
            raise AssertionError("the parser compiled code")
        return compile_(source, filename, mode, flags, *args, **kwargs)

    compile_ = builtins.compile
    monkeypatch.setattr(builtins, "compile", tree_only)
    for name in ("eval", "exec", "__import__"):
        monkeypatch.setattr(builtins, name, forbidden)
    for text in ATTACKS:
        with pytest.raises(ExpressionError, match="Cannot parse the formula"):
            parse(text, VARIABLES)
    value = parse("-4*x - 0.4*v + sin(u)", VARIABLES).evaluate(POINTS)  # a good formula still works
    monkeypatch.undo()
    np.testing.assert_allclose(value, -4 * POINTS["x"] - 0.4 * POINTS["v"] + np.sin(POINTS["u"]))


@pytest.mark.parametrize("text, message", [
    ("__import__('os')", "unexpected character \"'\" at position 11"),
    ("foo(x)", "unknown function 'foo' at position 0"),
    ("x + y", "unknown name 'y' at position 4; the variables are ['u', 'v', 'x']"),
    ("sin(x, v)", "'sin' takes 1 argument, given 2"),
    ("x +", "found the end"),
    ("(x", "expected ')' at position 2"),
    ("x v", "invalid syntax at position 2, found 'v'"),
    ("x^2 v", "invalid syntax at position 4, found 'v'"),  # positions count "^" as one character
    ("x )", "unmatched ')' at position 2"),
    ("u + (x if v else u)", "'x if v else u' at position 5 is not a number, a name, an operation"),
    ("sin(**x)", "'sin(**x)' at position 0 is not"),
    ("2 + 1_000", "'1_000' at position 4 is not"),
    ("0x1f", "'0x1f' at position 0 is not"),
    ("x // v", "'x // v' at position 0 is not"),
    ("x" * (MAX_LENGTH + 1), f"longer than {MAX_LENGTH} characters"),
    ("(" * 60 + "x" + ")" * 60, "nested more than 50 levels"),
])
def test_error_messages_say_what_and_where(text, message):
    with pytest.raises(ExpressionError) as info:
        parse(text, VARIABLES)
    assert message in str(info.value)
    with pytest.raises(ExpressionError, match="must be a str"):
        parse(3.0)


@pytest.mark.parametrize("text, expected", [
    ("1 + 2*3", 7.0),
    ("2^3^2", 2.0**9),
    ("2**-1", 0.5),
    ("-2^2", -4.0),
    ("(-2)^2", 4.0),
    ("8/4/2", 1.0),
    ("1 - 2 - 3", -4.0),
    ("+3 * -2", -6.0),
    ("1 +\n\t2", 3.0),
    ("2 ^ 3 ** 2 ^ 0.5", 2.0**3**2**0.5),
    (".5e1", 5.0),
    ("div(1, 0.0005) + inv(0.0005) + div(6, 3) + inv(4)", 1.0 + 0.0 + 2.0 + 0.25),
    ("max(1, 2) + min(1, 2) + abs(-3) + neg(1) + add(1, 2) + sub(1, 2) + mul(2, 3)", 2 + 1 + 3 - 1 + 3 - 1 + 6),
])
def test_precedence_and_functions_follow_python_and_gplearn(text, expected):
    assert parse(text).evaluate({}) == pytest.approx(expected, rel=1e-15)


def test_protected_functions_are_gplearn_s():
    functions = pytest.importorskip("gplearn.functions")
    a = np.array([1.0, -2.0, 3.0, 0.5])
    b = np.array([0.0, 0.0005, -0.002, 4.0])
    for name, gp in [("div", functions.div2), ("inv", functions.inv1), ("max", functions.max2),
                     ("min", functions.min2), ("abs", functions.abs1), ("neg", functions.neg1),
                     ("sin", functions.sin1), ("cos", functions.cos1), ("tan", functions.tan1)]:
        args = (a, b)[: FUNCTIONS[name][0]]
        np.testing.assert_array_equal(FUNCTIONS[name][1](*args), gp.function(*args), err_msg=name)


def formulas(max_leaves: int = 12):
    leaves = st.one_of(
        st.sampled_from(VARIABLES).map(Name),
        st.floats(min_value=-1e3, max_value=1e3, allow_nan=False, allow_infinity=False).map(Number),
    )

    def extend(children):
        return st.one_of(
            children.map(Negate),
            st.builds(BinOp, st.sampled_from("+-*/^"), children, children),
            st.builds(lambda f, a: Call(f, (a,)), st.sampled_from(["sin", "cos", "exp", "log", "sqrt", "tanh",
                                                                     "abs", "neg", "inv"]), children),
            st.builds(lambda f, a, b: Call(f, (a, b)), st.sampled_from(["add", "sub", "mul", "div", "max", "min"]),
                      children, children),
        )

    return st.recursive(leaves, extend, max_leaves=max_leaves)


@given(formulas())
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_text_reads_back_to_bit_identical_values(formula):
    text = str(formula)
    again = parse(text, VARIABLES)
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(np.broadcast_to(again.evaluate(POINTS), (4,)),
                                      np.broadcast_to(formula.evaluate(POINTS), (4,)), err_msg=text)
    assert str(parse(str(again))) == str(again)  # text is a fixed point after one reading
    parse(formula.to_text(digits=3), VARIABLES)  # rounded text is still a formula


@pytest.mark.parametrize("text", [
    "-4*x - 0.4*v + u",
    "x*sin(x) + exp(v)/x - log(x)^2 + sqrt(x)*tanh(v)",
    "mul(x, add(v, 2)) - neg(cos(x*v)) + sub(x, u)",
    "x^v + tan(0.3*x) + x^3/u",
])
def test_derivatives_match_central_differences(text):
    formula = parse(text, VARIABLES)
    x = {"x": np.array([0.7, 1.3, 2.1]), "v": np.array([0.2, -0.5, 0.9]), "u": np.array([1.1, 0.3, -0.4])}
    for name in VARIABLES:
        h = 1e-6
        up = formula.evaluate({**x, name: x[name] + h})
        down = formula.evaluate({**x, name: x[name] - h})
        exact = np.broadcast_to(formula.derivative(name).evaluate(x), (3,))
        np.testing.assert_allclose(exact, (up - down) / (2 * h), rtol=1e-6, atol=1e-7, err_msg=f"d/d{name} {text}")


def test_derivatives_are_simplified_and_kinks_have_none():
    assert str(parse("-4*x - 0.4*v").derivative("x")) == "-4.0"
    assert str(parse("3*x^2").derivative("x")) == "3.0*(2.0*x)"
    assert parse("v").derivative("x") == Number(0.0)
    for text in ("abs(x)", "div(1, x)", "inv(x)", "max(x, v)"):
        with pytest.raises(ExpressionError, match="has no derivative"):
            parse(text).derivative("x")


def test_rounded_text_and_names():
    formula = parse("-3.99812*x - 0.40031*v + 1.0000002*u + x^2")
    assert formula.to_text(4) == "-3.998*x - 0.4003*v + 1.000*u + x^2"
    assert formula.names() == {"x", "v", "u"}
    with pytest.raises(ExpressionError, match="No value for the variable 'u'"):
        formula.evaluate({"x": 1.0, "v": 2.0})
