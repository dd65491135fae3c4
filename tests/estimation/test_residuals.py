"""The normalised residual: against the EKF's own NIS, missing samples, bad covariances and wiring."""

from types import SimpleNamespace

import numpy as np
import pytest
from scipy.stats import chi2

import twingraph as tg
from blocks.estimation import EKF, Residual
from blocks.physics import FunctionODE, MassSpringDamper
from blocks.sources import Input

DT = 0.05


def residual_graph(n: int) -> tg.Graph:
    g = tg.Graph("residual", dt=DT)
    res = g.add(Residual(name="res"))
    g.connect(g.add(Input("nu", shape=(n,), unit="m")).out.value, res.inp.innovation)
    g.connect(g.add(Input("s", shape=(n,))).out.value, res.inp.S)
    return g


def filtered(model, y, u=None, **params) -> tg.History:
    """Run ``EKF(model) → Residual`` over ``y`` (and ``u``)."""
    g = tg.Graph("filter", dt=DT)
    ekf = g.add(EKF(model=model, name="ekf", **params))
    res = g.add(Residual(name="res"))
    if model.n_u:
        g.connect(g.add(Input("u", shape=(model.n_u,))).out.value, ekf.inp.u)
    g.connect(g.add(Input("y", shape=(model.n_y,))).out.value, ekf.inp.y)
    g.connect(ekf.out.innovation, res.inp.innovation)
    g.connect(ekf.out.S, res.inp.S)
    inputs = {"y": y} if u is None else {"u": u, "y": y}
    return tg.Simulator(g, batch=y.shape[1]).run(inputs=inputs)


def test_residual_of_a_consistent_filter_is_standard_normal_and_its_nis_the_filters():
    q, r, steps = np.array([1e-5, 1e-4]), 1e-3, 2000
    model, rng = MassSpringDamper(), np.random.default_rng(11)
    x, p = np.zeros((1, 2)), model.batch_params(1)
    u = np.sin(0.3 * np.arange(steps))[:, None, None]
    y = np.empty((steps, 1, 1))
    for k in range(steps):
        y[k] = model.observe(x, u[k], p) + np.sqrt(r) * rng.normal()
        x = model.advance(x, u[k], k * DT, DT, p) + np.sqrt(q) * rng.normal(size=(1, 2))
    hist = filtered(model, y, u, q=q, r=r, p0=1e-6, x0=0.0)
    residual = hist["res.residual"][:, 0]
    np.testing.assert_allclose(residual, hist["ekf.innovation"][:, 0] / np.sqrt(hist["ekf.S"][:, 0]), rtol=1e-15)
    np.testing.assert_allclose(hist["res.nis"], hist["ekf.nis"], rtol=1e-12)
    low, high = chi2.ppf([0.025, 0.975], steps) / steps  # mean of 2,000 squared N(0, 1) draws
    assert low < np.mean(residual**2) < high
    assert abs(residual.mean()) < 1.96 / np.sqrt(steps)


def test_missing_elements_give_zero_and_drop_out_of_the_nis():
    """A pendulum measured on both states; y[1] missing: r[1] = 0 and χ² = r[0]²."""

    def f(x, u, t, p):
        return np.stack([x[:, 1], -np.sin(x[:, 0])], axis=1)

    model = FunctionODE(f, states=("a", "b"))
    y = np.random.default_rng(12).normal(size=(30, 2, 2))
    y[:, 0, 1] = np.nan
    y[10:15, 1, :] = np.nan
    hist = filtered(model, y, r=[0.1, 0.2], x0=[0.4, 0.0])
    residual, nis = hist["res.residual"], hist["res.nis"]
    assert (residual[:, 0, 1] == 0).all() and (residual[10:15, 1] == 0).all() and (nis[10:15, 1] == 0).all()
    np.testing.assert_allclose(nis[:, 0], residual[:, 0, 0] ** 2, rtol=1e-15)
    np.testing.assert_allclose(nis[:, 0], hist["ekf.nis"][:, 0], rtol=1e-12)
    np.testing.assert_array_equal(hist["ekf.S"][10:15, 1], np.broadcast_to([0.1, 0.2], (5, 2)))


def test_bad_covariances_give_nan_without_warnings():
    """pytest turns RuntimeWarnings into errors: none may be raised here.

    A graph input refuses ±inf, so the block's step is called directly with its buffers.
    """
    res = Residual(name="res")

    def step(nu, s):
        out = SimpleNamespace(residual=np.empty((4, 3)), nis=np.empty(4))
        res.output(0.0, SimpleNamespace(innovation=np.array(nu), S=np.array(s)), out)
        return out

    nu = [[1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [1.0, np.nan, 3.0], [np.inf, 2.0, 0.0]]
    s = [[0.0, 4.0, 9.0], [-1.0, 4.0, 9.0], [1.0, 4.0, np.nan], [np.inf, np.inf, 0.0]]
    out = step(nu, s)
    np.testing.assert_array_equal(
        out.residual, [[np.nan, 1.0, 1.0], [np.nan, 1.0, 1.0], [1.0, np.nan, np.nan], [np.nan, 0.0, np.nan]]
    )
    np.testing.assert_array_equal(out.nis, [np.nan] * 4)
    out = step([[3.0, 0.0, -1.0]] * 4, [[np.inf, 2.0, 0.25]] * 4)
    np.testing.assert_array_equal(out.nis, [4.0] * 4)  # 0 + 0 + (-1 / 0.5)²


def test_ports_follow_the_innovation():
    g = residual_graph(2)
    plan_residual = g.blocks["res"].output_signals({"innovation": tg.Signal(shape=(2,), unit="m")})
    assert plan_residual["residual"] == tg.Signal(shape=(2,), unit="")
    assert plan_residual["nis"] == tg.Signal(shape=(), unit="")
    g = tg.Graph("bad", dt=DT)
    res = g.add(Residual(name="res"))
    g.connect(g.add(Input("nu", shape=(2,))).out.value, res.inp.innovation)
    g.connect(g.add(Input("s", shape=(3,))).out.value, res.inp.S)
    with pytest.raises(
        tg.ValidationError, match=r"Block 'res': 'innovation' \(\(2,\) float64\) and 'S' \(\(3,\) float64\)"
    ):
        g.validate()
