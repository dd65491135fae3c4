"""Larger systems as single ODE models: a chain of oscillators, a thermal network, a pendulum."""

import numpy as np

from twingraph.errors import check_number, invalid_param

from .library import STANDARD_GRAVITY
from .ode import ODEModel, as_numbers


class OscillatorChain(ODEModel):
    """``n_masses`` equal masses in a line, joined by springs to each other and to two walls.

    Parameters
    ----------
    n_masses : int
        Number of masses n.
    mass : float or sequence
        Mass of each body m [kg], > 0.
    stiffness : float or sequence
        Stiffness of each of the n + 1 springs k [N/m], > 0.
    damping : float or sequence
        Viscous damping of each body against the ground c [N s/m].
    x0, **kwargs
        As for :class:`~blocks.physics.ode.ODEModel`; states are the n
        displacements then the n velocities.

    Ports
    -----
    u (in) : shape (1,), force F on the first mass [N].
    y (out) : shape (n,), displacements sᵢ [m].
    x (out) : shape (2n,), displacements [m] and velocities [m/s] (mixed units).

    Notes
    -----
    With walls ``s₀ = s_{n+1} = 0`` (masses numbered 1 … n)::

        ṡᵢ = vᵢ
        m v̇ᵢ = k (s_{i+1} - sᵢ) - k (sᵢ - s_{i-1}) - c vᵢ + F δᵢ₁

    Undamped, the normal modes ``j = 1 … n`` have shapes ``sin(i j π / (n + 1))``
    and frequencies ``ωⱼ = 2 √(k/m) sin(j π / (2 (n + 1)))`` [rad/s]; the
    energy ``Σ m vᵢ² / 2 + Σ k (sᵢ - s_{i-1})² / 2`` over the n + 1 springs is
    conserved.

    Examples
    --------
    Three masses started in their first normal mode come back after one period:

    >>> chain = OscillatorChain(n_masses=3, substeps=200)
    >>> shape = np.sin(np.arange(1, 4) * np.pi / 4)
    >>> period = 2 * np.pi / (2 * np.sin(np.pi / 8))
    >>> x0 = np.concatenate([shape, np.zeros(3)])[None]
    >>> x = chain.advance(x0, np.zeros((1, 1)), 0.0, period, chain.batch_params(1))
    >>> float(np.abs(x - x0).max()) < 1e-7
    True
    """

    n_inputs = 1
    input_unit = "N"
    output_unit = "m"
    parameters = ("mass", "stiffness", "damping")
    positive = ("mass", "stiffness")

    def __init__(self, n_masses=10, mass=1.0, stiffness=1.0, damping=0.0, x0=0.0, **kwargs):
        super().__init__(x0, **kwargs)
        self.n_masses = n_masses
        self.mass = mass
        self.stiffness = stiffness
        self.damping = damping

    @property
    def states(self) -> tuple[str, ...]:
        return tuple(f"s{i}" for i in range(self.n_masses)) + tuple(f"v{i}" for i in range(self.n_masses))

    @property
    def state_units(self) -> tuple[str, ...]:
        return ("m",) * self.n_masses + ("m/s",) * self.n_masses

    @property
    def n_outputs(self) -> int:
        return self.n_masses

    def check_params(self) -> None:
        check_number(self, "n_masses", 1, integer=True)
        super().check_params()

    def derivative(self, x, u, t, p):
        n = self.n_masses
        s, v = x[:, :n], x[:, n:]
        m, k, c = p["mass"][:, None], p["stiffness"][:, None], p["damping"][:, None]
        stretch = np.diff(s, axis=1, prepend=0.0, append=0.0)  # spring i: s_i - s_{i-1}, walls at 0
        force = k * np.diff(stretch, axis=1) - c * v
        force[:, 0] += u[:, 0]
        return np.concatenate([v, force / m], axis=1)

    def observe(self, x, u, p):
        return x[:, : self.n_masses]

    def jacobian(self, x, u, t, p):
        n = self.n_masses
        m, k, c = p["mass"][:, None, None], p["stiffness"][:, None, None], p["damping"][:, None, None]
        identity = np.eye(n)
        laplacian = -2 * identity + np.eye(n, k=1) + np.eye(n, k=-1)
        jac = np.zeros((len(x), 2 * n, 2 * n))
        jac[:, :n, n:] = identity
        jac[:, n:, :n] = k / m * laplacian
        jac[:, n:, n:] = -c / m * identity
        return jac

    def energy(self, x, p):
        """Kinetic plus spring energy [J], shape (B,)."""
        n = self.n_masses
        s, v = x[:, :n], x[:, n:]
        stretch = np.diff(s, axis=1, prepend=0.0, append=0.0)
        return 0.5 * p["mass"] * np.sum(v**2, axis=1) + 0.5 * p["stiffness"] * np.sum(stretch**2, axis=1)


class ThermalNetwork(ODEModel):
    """Lumped thermal R/C network: n nodes with heat capacities, joined by thermal conductances.

    Parameters
    ----------
    conductance : array_like, shape (n, n)
        Symmetric matrix of conductances between nodes G [W/K], ≥ 0; the
        diagonal is ignored. Pass an ndarray for large networks (it is read at
        every derivative evaluation).
    capacitance : array_like, shape (n,)
        Heat capacity of each node C [J/K], > 0.
    ambient_conductance : array_like, shape (n,)
        Conductance from each node to the ambient g_a [W/K], ≥ 0.
    ambient_temperature : float or sequence
        Ambient temperature T_a [K], per asset.
    x0, **kwargs
        As for :class:`~blocks.physics.ode.ODEModel`; the states are the node
        temperatures [K].

    Ports
    -----
    u (in) : shape (n,), heat injected into each node Q [W].
    y (out) : shape (n,), node temperatures T [K].
    x (out) : shape (n,), the same.

    Notes
    -----
    ::

        Cᵢ Ṫᵢ = Σⱼ Gᵢⱼ (Tⱼ - Tᵢ) + g_a,ᵢ (T_a - Tᵢ) + Qᵢ

    that is ``C Ṫ = -(L + diag(g_a)) T + g_a T_a + Q`` with the Laplacian
    ``L = diag(G 1) - G``. Time constants ``Cᵢ / Gᵢⱼ`` that span decades make
    the system stiff: explicit integrators then need a step below the
    smallest one, while ``integrator="solve_ivp"`` with ``method="Radau"`` or
    ``"BDF"`` takes steps sized by accuracy (the analytic Jacobian is given).

    Examples
    --------
    A 1 kJ/K node cooling through 10 W/K settles with τ = 100 s:

    >>> net = ThermalNetwork(conductance=[[0.0]], capacitance=[1000.0], ambient_conductance=[10.0],
    ...                      ambient_temperature=290.0, x0=390.0, substeps=10)
    >>> x = net.advance(net.initial_state(1), np.zeros((1, 1)), 0.0, 100.0, net.batch_params(1))
    >>> round(float(x[0, 0]), 3), round(290 + 100 * float(np.exp(-1.0)), 3)
    (326.788, 326.788)
    """

    input_unit = "W"
    output_unit = "K"
    parameters = ("ambient_temperature",)
    positive = ("ambient_temperature",)

    def __init__(
        self,
        conductance=((0.0, 2.0, 0.0), (2.0, 0.0, 1.0), (0.0, 1.0, 0.0)),
        capacitance=(500.0, 1000.0, 2000.0),
        ambient_conductance=(1.0, 0.0, 0.5),
        ambient_temperature=293.15,
        x0=293.15,
        **kwargs,
    ):
        super().__init__(x0, **kwargs)
        self.conductance = conductance
        self.capacitance = capacitance
        self.ambient_conductance = ambient_conductance
        self.ambient_temperature = ambient_temperature

    @property
    def n_nodes(self) -> int:
        """Number of nodes n."""
        return int(np.size(self.capacitance))

    @property
    def states(self) -> tuple[str, ...]:
        return tuple(f"T{i}" for i in range(self.n_nodes))

    @property
    def state_units(self) -> tuple[str, ...]:
        return ("K",) * self.n_nodes

    @property
    def n_inputs(self) -> int:
        return self.n_nodes

    def check_params(self) -> None:
        C = as_numbers(self.capacitance)
        if C is None or C.ndim != 1 or C.size == 0 or not np.all(np.isfinite(C) & (C > 0)):
            raise invalid_param(self, "capacitance", "a non-empty sequence of numbers > 0 [J/K]", self.capacitance)
        n = len(C)
        G = as_numbers(self.conductance)
        if G is None or G.shape != (n, n) or not np.all(np.isfinite(G) & (G >= 0)) or not np.allclose(G, G.T):
            expected = f"a symmetric ({n}, {n}) matrix of numbers >= 0 [W/K]"
            raise invalid_param(self, "conductance", expected, self.conductance)
        g_a = as_numbers(self.ambient_conductance)
        if g_a is None or g_a.shape != (n,) or not np.all(np.isfinite(g_a) & (g_a >= 0)):
            raise invalid_param(self, "ambient_conductance", f"{n} numbers >= 0 [W/K]", self.ambient_conductance)
        super().check_params()

    def _network(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return (
            np.asarray(self.conductance, dtype=float),
            np.asarray(self.capacitance, dtype=float),
            np.asarray(self.ambient_conductance, dtype=float),
        )

    def derivative(self, x, u, t, p):
        G, C, g_a = self._network()
        T = x
        T_a = p["ambient_temperature"][:, None]
        exchange = T @ G - T * G.sum(axis=1)  # Σⱼ Gᵢⱼ (Tⱼ - Tᵢ), G symmetric
        ambient = g_a * (T_a - T)
        return (exchange + ambient + u) / C

    def jacobian(self, x, u, t, p):
        G, C, g_a = self._network()
        A = (G - np.diag(G.sum(axis=1) + g_a)) / C[:, None]
        return np.repeat(A[None], len(x), axis=0)


class Pendulum(ODEModel):
    """A damped rigid pendulum driven by a torque: ``m l² θ̈ = τ - m g l sin θ - c θ̇``.

    Parameters
    ----------
    length : float or sequence
        Distance from pivot to the point mass l [m], > 0.
    mass : float or sequence
        Bob mass m [kg], > 0.
    damping : float or sequence
        Viscous damping at the pivot c [N m s/rad].
    x0, **kwargs
        As for :class:`~blocks.physics.ode.ODEModel`; states ``(θ, ω)``.

    Ports
    -----
    u (in) : shape (1,), torque τ at the pivot [N m].
    y (out) : shape (1,), angle θ from the downward vertical [rad].
    x (out) : shape (2,), angle θ [rad] and angular velocity ω [rad/s].

    Notes
    -----
    ::

        θ̇ = ω
        m l² ω̇ = τ - m g l sin θ - c ω

    Undamped and unforced, the energy ``m l² ω² / 2 + m g l (1 - cos θ)`` is
    conserved, and released at rest from θ₀ the pendulum has the period
    ``T = 4 √(l/g) K(sin²(θ₀/2))`` with K the complete elliptic integral of
    the first kind (parameter m = k², as :func:`scipy.special.ellipk`).

    Examples
    --------
    >>> from scipy.special import ellipk
    >>> pendulum = Pendulum(length=1.0, x0=[2.0, 0.0], substeps=2000)
    >>> period = 4 * np.sqrt(1.0 / STANDARD_GRAVITY) * ellipk(np.sin(1.0) ** 2)
    >>> x = pendulum.advance(pendulum.initial_state(1), np.zeros((1, 1)), 0.0, period, pendulum.batch_params(1))
    >>> np.round(x, 6) + 0.0
    array([[2., 0.]])
    """

    states = ("theta", "omega")
    state_units = ("rad", "rad/s")
    n_inputs = 1
    input_unit = "N*m"
    n_outputs = 1
    output_unit = "rad"
    parameters = ("length", "mass", "damping")
    positive = ("length", "mass")

    def __init__(self, length=1.0, mass=1.0, damping=0.0, x0=(0.5, 0.0), **kwargs):
        super().__init__(x0, **kwargs)
        self.length = length
        self.mass = mass
        self.damping = damping

    def derivative(self, x, u, t, p):
        theta, omega = x[:, 0], x[:, 1]
        l, m, c = p["length"], p["mass"], p["damping"]
        torque = u[:, 0]
        omega_dot = (torque - m * STANDARD_GRAVITY * l * np.sin(theta) - c * omega) / (m * l**2)
        return np.stack([omega, omega_dot], axis=1)

    def observe(self, x, u, p):
        return x[:, :1]

    def jacobian(self, x, u, t, p):
        theta = x[:, 0]
        l, m, c = p["length"], p["mass"], p["damping"]
        jac = np.zeros((len(x), 2, 2))
        jac[:, 0, 1] = 1.0
        jac[:, 1, 0] = -STANDARD_GRAVITY / l * np.cos(theta)
        jac[:, 1, 1] = -c / (m * l**2)
        return jac

    def energy(self, x, p):
        """Kinetic plus potential energy [J], shape (B,), zero at rest hanging down."""
        theta, omega = x[:, 0], x[:, 1]
        l, m = p["length"], p["mass"]
        return 0.5 * m * l**2 * omega**2 + m * STANDARD_GRAVITY * l * (1 - np.cos(theta))
