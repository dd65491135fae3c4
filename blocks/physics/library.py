"""A library of small parametric ODE models, each with its units and equations.

Every model is an :class:`~blocks.physics.ode.ODEModel`: the physical
parameters may differ per asset (a scalar or one value per asset) and may be
estimated; ``x0`` and the ``**kwargs`` (``integrator``, ``substeps``,
``method``, ``rtol``, ``atol``, ``name``) are as documented there.
"""

import numpy as np

from .ode import ODEModel

STANDARD_GRAVITY = 9.80665  # m/s², the conventional value (ISO 80000-3)


class FirstOrderLag(ODEModel):
    """First-order lag: ``τ ẏ = K u - y``.

    Parameters
    ----------
    tau : float or sequence
        Time constant τ [s], > 0.
    gain : float or sequence
        Static gain K [unit of y / unit of u].
    x0, **kwargs
        As for :class:`~blocks.physics.ode.ODEModel`.

    Ports
    -----
    u (in) : shape (1,), the input.
    y (out) : shape (1,), the lagged output.
    x (out) : shape (1,), the state (equal to ``y``).

    Notes
    -----
    The step response from rest is ``y(t) = K u (1 - exp(-t / τ))``.

    Examples
    --------
    >>> lag = FirstOrderLag(tau=2.0, gain=3.0, substeps=10)
    >>> x = lag.advance(np.zeros((1, 1)), np.ones((1, 1)), 0.0, 2.0, lag.batch_params(1))
    >>> round(float(x[0, 0]), 5), round(3 * (1 - float(np.exp(-1.0))), 5)
    (1.89636, 1.89636)
    """

    states = ("y",)
    n_inputs = 1
    parameters = ("tau", "gain")
    positive = ("tau",)

    def __init__(self, tau=1.0, gain=1.0, x0=0.0, **kwargs):
        super().__init__(x0, **kwargs)
        self.tau = tau
        self.gain = gain

    def derivative(self, x, u, t, p):
        tau = p["tau"][:, None]
        gain = p["gain"][:, None]
        return (gain * u - x) / tau

    def jacobian(self, x, u, t, p):
        return (-1.0 / p["tau"])[:, None, None]


class DoubleIntegrator(ODEModel):
    """A mass pushed by a force: ``ṡ = v``, ``m v̇ = F``.

    Parameters
    ----------
    mass : float or sequence
        Moving mass m [kg], > 0.
    x0, **kwargs
        As for :class:`~blocks.physics.ode.ODEModel`; states ``(s, v)``.

    Ports
    -----
    u (in) : shape (1,), force F [N].
    y (out) : shape (1,), position s [m].
    x (out) : shape (2,), position s [m] and velocity v [m/s].

    Notes
    -----
    From rest under a constant force, ``s(t) = F t² / (2 m)``; RK4 integrates
    this polynomial exactly.

    Examples
    --------
    >>> model = DoubleIntegrator(mass=2.0)
    >>> model.advance(np.zeros((1, 2)), np.full((1, 1), 4.0), 0.0, 3.0, model.batch_params(1))
    array([[9., 6.]])
    """

    states = ("s", "v")
    state_units = ("m", "m/s")
    n_inputs = 1
    input_unit = "N"
    n_outputs = 1
    output_unit = "m"
    parameters = ("mass",)
    positive = ("mass",)

    def __init__(self, mass=1.0, x0=0.0, **kwargs):
        super().__init__(x0, **kwargs)
        self.mass = mass

    def derivative(self, x, u, t, p):
        v = x[:, 1]
        force = u[:, 0]
        a = force / p["mass"]
        return np.stack([v, a], axis=1)

    def observe(self, x, u, p):
        return x[:, :1]

    def observation_matrix(self):
        return np.array([[1.0, 0.0]])

    def jacobian(self, x, u, t, p):
        jac = np.zeros((len(x), 2, 2))
        jac[:, 0, 1] = 1.0
        return jac


class MassSpringDamper(ODEModel):
    """Mass-spring-damper: ``m s̈ + c ṡ + k s = F``.

    Parameters
    ----------
    mass : float or sequence
        Moving mass m [kg], > 0.
    damping : float or sequence
        Viscous damping c [N s/m].
    stiffness : float or sequence
        Spring stiffness k [N/m], > 0.
    x0, **kwargs
        As for :class:`~blocks.physics.ode.ODEModel`; states ``(s, v)``.

    Ports
    -----
    u (in) : shape (1,), force F [N].
    y (out) : shape (1,), position s [m].
    x (out) : shape (2,), position s [m] and velocity v [m/s].

    Notes
    -----
    ::

        ṡ = v
        v̇ = (F - c v - k s) / m

    With ``ω = √(k/m)`` and ``ζ = c / (2 √(k m)) < 1``, a constant force ``F``
    settles at ``s_eq = F / k`` along
    ``s(t) = s_eq + e^{-ζωt} (d cos ω_d t + (v₀ + ζω d) / ω_d sin ω_d t)``,
    ``d = s₀ - s_eq``, ``ω_d = ω √(1 - ζ²)``.

    Examples
    --------
    >>> msd = MassSpringDamper(mass=1.0, damping=0.0, stiffness=4.0, x0=[1.0, 0.0], substeps=100)
    >>> p = msd.batch_params(1)
    >>> x = msd.advance(msd.initial_state(1), np.zeros((1, 1)), 0.0, np.pi, p)  # one period
    >>> np.round(x, 4) + 0.0
    array([[1., 0.]])
    >>> round(float(msd.energy(x, p)[0]), 6)
    2.0
    """

    states = ("s", "v")
    state_units = ("m", "m/s")
    n_inputs = 1
    input_unit = "N"
    n_outputs = 1
    output_unit = "m"
    parameters = ("mass", "damping", "stiffness")
    positive = ("mass", "stiffness")

    def __init__(self, mass=1.0, damping=0.5, stiffness=4.0, x0=0.0, **kwargs):
        super().__init__(x0, **kwargs)
        self.mass = mass
        self.damping = damping
        self.stiffness = stiffness

    def derivative(self, x, u, t, p):
        s, v = x[:, 0], x[:, 1]
        m, c, k = p["mass"], p["damping"], p["stiffness"]
        force = u[:, 0]
        a = (force - c * v - k * s) / m
        return np.stack([v, a], axis=1)

    def observe(self, x, u, p):
        return x[:, :1]

    def observation_matrix(self):
        return np.array([[1.0, 0.0]])

    def jacobian(self, x, u, t, p):
        m, c, k = p["mass"], p["damping"], p["stiffness"]
        jac = np.zeros((len(x), 2, 2))
        jac[:, 0, 1] = 1.0
        jac[:, 1, 0] = -k / m
        jac[:, 1, 1] = -c / m
        return jac

    def energy(self, x, p):
        """Mechanical energy ``m v² / 2 + k s² / 2`` [J], shape (B,)."""
        s, v = x[:, 0], x[:, 1]
        return 0.5 * p["mass"] * v**2 + 0.5 * p["stiffness"] * s**2


class HarmonicOscillator(ODEModel):
    """Undamped, unforced harmonic oscillator: ``s̈ = -ω² s``.

    Parameters
    ----------
    omega : float or sequence
        Angular frequency ω [rad/s], > 0.
    x0, **kwargs
        As for :class:`~blocks.physics.ode.ODEModel`; states ``(s, v)``.

    Ports
    -----
    y (out) : shape (2,), position s [m] and velocity v [m/s] (no input port).
    x (out) : shape (2,), the same.

    Notes
    -----
    ``s(t) = s₀ cos ωt + v₀/ω sin ωt``; the energy per unit mass
    ``E = v²/2 + ω² s²/2`` is conserved. RK4 with step h loses a fraction
    ``(ωh)⁶ / 72`` of it per step.

    Examples
    --------
    >>> osc = HarmonicOscillator(omega=2.0, x0=[1.0, 0.0], substeps=50)
    >>> x = osc.advance(osc.initial_state(1), np.zeros((1, 0)), 0.0, 0.5, osc.batch_params(1))
    >>> np.round(x, 6), round(float(np.cos(1.0)), 6), round(float(-2 * np.sin(1.0)), 6)
    (array([[ 0.540302, -1.682942]]), 0.540302, -1.682942)
    """

    states = ("s", "v")
    state_units = ("m", "m/s")
    parameters = ("omega",)
    positive = ("omega",)

    def __init__(self, omega=1.0, x0=(1.0, 0.0), **kwargs):
        super().__init__(x0, **kwargs)
        self.omega = omega

    def derivative(self, x, u, t, p):
        s, v = x[:, 0], x[:, 1]
        a = -p["omega"] ** 2 * s
        return np.stack([v, a], axis=1)

    def jacobian(self, x, u, t, p):
        jac = np.zeros((len(x), 2, 2))
        jac[:, 0, 1] = 1.0
        jac[:, 1, 0] = -p["omega"] ** 2
        return jac

    def energy(self, x, p):
        """Energy per unit mass ``v² / 2 + ω² s² / 2`` [J/kg], shape (B,)."""
        s, v = x[:, 0], x[:, 1]
        return 0.5 * v**2 + 0.5 * p["omega"] ** 2 * s**2


class TankLevel(ODEModel):
    """Open tank draining through an orifice (Torricelli): ``A ḣ = q_in - C_d a √(2 g h)``.

    Parameters
    ----------
    area : float or sequence
        Tank cross-section A [m²], > 0.
    outlet_area : float or sequence
        Orifice area a [m²], > 0.
    discharge_coefficient : float or sequence
        Orifice discharge coefficient C_d [-], > 0 (about 0.6 for a sharp edge).
    x0, **kwargs
        As for :class:`~blocks.physics.ode.ODEModel`; the state is the level h [m].

    Ports
    -----
    u (in) : shape (1,), inflow q_in [m3/s].
    y (out) : shape (1,), level h [m].
    x (out) : shape (1,), the same.

    Notes
    -----
    ::

        q_out = C_d a √(2 g max(h, 0))
        ḣ = (q_in - q_out) / A

    With no inflow, ``√h`` falls linearly, ``√h(t) = √h₀ - κ t / 2`` with
    ``κ = C_d a √(2 g) / A``, and the tank is empty after
    ``T = (A / (C_d a)) √(2 h₀ / g)``. The outflow is not differentiable at
    ``h = 0``, so the model has no analytic Jacobian.

    Examples
    --------
    Draining a 1 m² tank from 2 m through 1 dm² with no inflow:

    >>> import twingraph as tg
    >>> from blocks.sources import Constant
    >>> g = tg.Graph("tank", dt=0.5)
    >>> inflow = g.add(Constant(value=[0.0], unit="m3/s", name="inflow"))
    >>> tank = g.add(TankLevel(area=1.0, outlet_area=0.01, discharge_coefficient=0.6, x0=2.0, name="tank"))
    >>> g.connect(inflow.out.y, tank.inp.u)
    >>> h = tg.Simulator(g).run(steps=240)["tank.y"][:, 0]
    >>> kappa = 0.6 * 0.01 * np.sqrt(2 * STANDARD_GRAVITY) / 1.0
    >>> round(float(h[100]), 6), round(float((np.sqrt(2.0) - kappa * 50.0 / 2) ** 2), 6)  # at t = 50 s
    (0.562365, 0.562365)
    >>> float(np.argmax(h <= 1e-6) * 0.5), round(float(2 * np.sqrt(2.0) / kappa), 2)  # empty [s]
    (106.5, 106.44)
    """

    states = ("h",)
    state_units = ("m",)
    n_inputs = 1
    input_unit = "m3/s"
    parameters = ("area", "outlet_area", "discharge_coefficient")
    positive = ("area", "outlet_area", "discharge_coefficient")

    def __init__(self, area=1.0, outlet_area=0.01, discharge_coefficient=0.6, x0=1.0, **kwargs):
        super().__init__(x0, **kwargs)
        self.area = area
        self.outlet_area = outlet_area
        self.discharge_coefficient = discharge_coefficient

    def derivative(self, x, u, t, p):
        h = np.maximum(x[:, 0], 0.0)
        q_in = u[:, 0]
        q_out = p["discharge_coefficient"] * p["outlet_area"] * np.sqrt(2 * STANDARD_GRAVITY * h)
        return ((q_in - q_out) / p["area"])[:, None]


class PumpLike(ODEModel):
    """A DC motor driving a centrifugal pump, with an efficiency that degrades.

    Parameters
    ----------
    efficiency : float or sequence
        Hydraulic efficiency η [-]: 1.0 when new, about 0.6 when worn. It scales
        the flow delivered per unit of speed.
    friction : float or sequence
        Viscous friction of motor and bearings b [N m s/rad].
    inertia : float or sequence
        Rotor and impeller inertia J [kg m²], > 0.
    motor_constant : float or sequence
        Torque and back-EMF constant K [N m/A = V s/rad], > 0.
    resistance : float or sequence
        Armature resistance R [Ω], > 0.
    load_coefficient : float or sequence
        Hydraulic load torque per speed squared c_T [N m s²/rad²].
    flow_coefficient : float or sequence
        Flow per unit of speed of a new pump c_Q [m³/rad], > 0.
    flow_time_constant : float or sequence
        Lag of the flow behind the speed τ_q [s], > 0.
    x0, **kwargs
        As for :class:`~blocks.physics.ode.ODEModel`; states ``(ω, q)``.

    Ports
    -----
    u (in) : shape (1,), motor voltage V [V].
    y (out) : shape (1,), flow q [m3/s].
    x (out) : shape (2,), motor speed ω [rad/s] and flow q [m³/s].

    Notes
    -----
    Armature inductance is neglected (the current settles much faster than
    the speed); the load torque follows the pump affinity law, ∝ ω²::

        i = (V - K ω) / R
        J ω̇ = K i - b ω - c_T ω |ω|
        τ_q q̇ = η c_Q ω - q

    At a constant voltage the speed settles where the motor torque meets
    friction and load, independently of η; the flow settles at ``η c_Q ω``.
    The defaults describe a small 12 V pump: about 194 rad/s (1,850 rpm) and
    0.97 L/s when new.

    Examples
    --------
    >>> import twingraph as tg
    >>> from blocks.sources import Input
    >>> g = tg.Graph("pumps", dt=0.01)
    >>> u = g.add(Input("u", shape=(1,), unit="V"))
    >>> pump = g.add(PumpLike(efficiency=[1.0, 0.6], name="pump"))
    >>> g.connect(u.out.value, pump.inp.u)
    >>> pump.out.y
    <output pump.y: (1,) float64 [m3/s]>
    >>> hist = tg.Simulator(g, batch=2).run(inputs={"u": np.full((1000, 1), 12.0)})
    >>> speed, flow = hist["pump.x"][-1].T  # after 10 s, new and worn
    >>> np.round(speed, 1), np.round(flow * 1000, 3)  # [rad/s], [L/s]
    (array([194.4, 194.4]), array([0.972, 0.583]))
    """

    states = ("omega", "q")
    state_units = ("rad/s", "m3/s")
    n_inputs = 1
    input_unit = "V"
    n_outputs = 1
    output_unit = "m3/s"
    parameters = (
        "efficiency",
        "friction",
        "inertia",
        "motor_constant",
        "resistance",
        "load_coefficient",
        "flow_coefficient",
        "flow_time_constant",
    )
    positive = ("inertia", "motor_constant", "resistance", "flow_coefficient", "flow_time_constant")

    def __init__(
        self,
        efficiency=1.0,
        friction=1e-4,
        inertia=1e-3,
        motor_constant=0.05,
        resistance=1.0,
        load_coefficient=2.5e-6,
        flow_coefficient=5e-6,
        flow_time_constant=0.5,
        x0=0.0,
        **kwargs,
    ):
        super().__init__(x0, **kwargs)
        self.efficiency = efficiency
        self.friction = friction
        self.inertia = inertia
        self.motor_constant = motor_constant
        self.resistance = resistance
        self.load_coefficient = load_coefficient
        self.flow_coefficient = flow_coefficient
        self.flow_time_constant = flow_time_constant

    def derivative(self, x, u, t, p):
        omega, q = x[:, 0], x[:, 1]
        voltage = u[:, 0]
        K, R, J, b = p["motor_constant"], p["resistance"], p["inertia"], p["friction"]
        c_T, c_Q, tau_q, eta = p["load_coefficient"], p["flow_coefficient"], p["flow_time_constant"], p["efficiency"]
        i = (voltage - K * omega) / R
        dx = np.empty_like(x)  # laid out like x: an estimator's batch-last copies stay batch-last
        np.divide(K * i - b * omega - c_T * omega * np.abs(omega), J, out=dx[:, 0])
        np.divide(eta * c_Q * omega - q, tau_q, out=dx[:, 1])
        return dx

    def observe(self, x, u, p):
        return x[:, 1:]

    def observation_matrix(self):
        return np.array([[0.0, 1.0]])

    def jacobian(self, x, u, t, p):
        omega = x[:, 0]
        K, R, J, b = p["motor_constant"], p["resistance"], p["inertia"], p["friction"]
        c_T, c_Q, tau_q, eta = p["load_coefficient"], p["flow_coefficient"], p["flow_time_constant"], p["efficiency"]
        jac = np.zeros((len(x), 2, 2))
        jac[:, 0, 0] = (-K**2 / R - b - 2 * c_T * np.abs(omega)) / J
        jac[:, 1, 0] = eta * c_Q / tau_q
        jac[:, 1, 1] = -1.0 / tau_q
        return jac

    def parameter_jacobian(self, x, u, t, p, names):
        omega, q = x[:, 0], x[:, 1]
        K, R, J, b = p["motor_constant"], p["resistance"], p["inertia"], p["friction"]
        c_T, c_Q, tau_q, eta = p["load_coefficient"], p["flow_coefficient"], p["flow_time_constant"], p["efficiency"]

        def current():
            return (u[:, 0] - K * omega) / R

        jac = np.zeros((len(x), 2, len(names)))
        for j, name in enumerate(names):  # ω̇ depends on the motor's parameters, q̇ on the pump's
            if name == "efficiency":
                jac[:, 1, j] = c_Q * omega / tau_q
            elif name == "flow_coefficient":
                jac[:, 1, j] = eta * omega / tau_q
            elif name == "flow_time_constant":
                jac[:, 1, j] = (q - eta * c_Q * omega) / tau_q**2
            elif name == "friction":
                jac[:, 0, j] = -omega / J
            elif name == "load_coefficient":
                jac[:, 0, j] = -omega * np.abs(omega) / J
            elif name == "motor_constant":
                jac[:, 0, j] = (current() - K * omega / R) / J
            elif name == "resistance":
                jac[:, 0, j] = -K * current() / (R * J)
            else:  # inertia: ∂(torque / J)/∂J
                jac[:, 0, j] = -(K * current() - b * omega - c_T * omega * np.abs(omega)) / J**2
        return jac
