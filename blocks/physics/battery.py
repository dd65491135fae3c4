"""A lithium-ion cell as an equivalent circuit, discharged to its end-of-discharge voltage."""

import numpy as np

from twingraph.errors import invalid_param

from .ode import ODEModel, as_numbers


class BatteryCircuit(ODEModel):
    """Equivalent-circuit battery discharge model with temperature (Daigle & Sankararaman, 2013).

    The model of NASA ProgPy's ``BatteryCircuit``, written from its equations,
    with its default parameters: an 18650-type Li-ion cell. A capacitor
    ``C_b`` whose capacitance depends on the state of charge holds the charge;
    two RC pairs (surface overpotential ``R_s C_s``, concentration polarisation
    ``R_cp C_cp``) and a parasitic resistance ``R_p`` shape the terminal
    voltage; Joule heating of the RC pairs warms the cell. The end of
    discharge (EOD) is reached when the voltage falls below ``v_eod``
    (:meth:`end_of_discharge`).

    Parameters
    ----------
    q_max : float or sequence
        Charge stored in ``C_b`` when full [C], > 0 (ProgPy's ``qMax``).
    c_max : float or sequence
        Usable charge, the span of SOC from 0 to 1 [C], > 0 (``CMax``).
    v_eod : float or sequence
        End-of-discharge voltage threshold [V], > 0 (``VEOD``).
    c_bp0, c_bp1, c_bp2, c_bp3 : float or sequence
        Coefficients of the cubic ``C_b(SOC)`` [F] (``Cbp0`` ... ``Cbp3``).
    r_p : float or sequence
        Parasitic (self-discharge) resistance [Ω], > 0 (``Rp``).
    r_s : float or sequence
        Resistance of the surface RC pair [Ω], > 0 (``Rs``).
    c_s : float or sequence
        Capacitance of the surface RC pair [F], > 0 (``Cs``).
    r_cp0, r_cp1 : float or sequence
        Resistance of the concentration RC pair at full charge, and the
        amplitude of its rise as the cell empties [Ω]; ``r_cp0 > 0``,
        ``r_cp1 >= 0`` (``Rcp0``, ``Rcp1``).
    r_cp2 : float or sequence
        Rate of that rise with depth of discharge [-], >= 0 (``Rcp2``).
    c_cp : float or sequence
        Capacitance of the concentration RC pair [F], > 0 (``Ccp``).
    t_a : float or sequence
        Ambient temperature [K], > 0 (``Ta``).
    j_t : float or sequence
        Heat capacity of the cell [J/K], > 0 (``Jt``).
    h_a : float or sequence
        Heat transfer coefficient to ambient [W/K], >= 0 (``ha``).
    h_cp, h_cs : float or sequence
        Fractions of the Joule heat of the concentration and surface RC pairs
        that warm the cell [-], >= 0 (``hcp``, ``hcs``).
    x0, **kwargs
        As for :class:`~blocks.physics.ode.ODEModel`; states ``(T_b, q_b,
        q_cp, q_cs)``, by default ambient and full: ``(292.1, 7856.3254, 0, 0)``.
        ProgPy integrates with Euler steps; pass ``integrator="euler"`` to
        reproduce its trajectories.

    Ports
    -----
    u (in) : shape (1,), discharge current i [A] (> 0 discharges).
    y (out) : shape (2,), temperature T_b [K] and terminal voltage v [V]
        (unit unspecified: the two differ).
    x (out) : shape (4,), temperature T_b [K] and charges q_b, q_cp, q_cs [C].

    Notes
    -----
    ::

        SOC  = 1 - (q_max - q_b) / c_max
        C_b  = c_bp0 SOC³ + c_bp1 SOC² + c_bp2 SOC + c_bp3
        R_cp = r_cp0 + r_cp1 exp(r_cp2 (1 - SOC))
        V_b = q_b / C_b,   V_cp = q_cp / c_cp,   V_cs = q_cs / c_s
        v    = V_b - V_cp - V_cs
        i_b  = i + v / r_p
        q̇_b  = -i_b
        q̇_cp = i_b - V_cp / R_cp
        q̇_cs = i_b - V_cs / r_s
        j_t Ṫ_b = h_a (t_a - T_b) + h_cp V_cp² / R_cp + h_cs V_cs² / r_s

    At rest (``q_cp = q_cs = 0``) the terminal voltage is the open-circuit
    voltage ``q_b / C_b(SOC)``: 4.183 V when full with the defaults. Under a
    constant current the RC pairs settle (time constants ``r_s c_s`` ≈ 12.6 s
    and ``R_cp c_cp`` ≈ 1 s) at ``V_cs = r_s i_b`` and ``V_cp = R_cp i_b``.
    The parameter names are ProgPy's in snake case; its ``V0`` and ``Cb0``
    (``q_max / C_b(1)`` and ``C_b(1)``) are implied, not parameters here.

    References
    ----------
    Daigle, M. and Sankararaman, S. (2013). Advanced methods for determining
    prediction uncertainty in model-based prognostics with application to
    planetary rovers. *Annual Conference of the PHM Society*, 262–274.

    Examples
    --------
    A full cell at rest holds its open-circuit voltage; under 2 A it ends its
    discharge after about 63 minutes:

    >>> import twingraph as tg
    >>> from blocks.sources import Constant
    >>> cell = BatteryCircuit()
    >>> p = cell.batch_params(1)
    >>> round(float(cell.observe(cell.initial_state(1), np.zeros((1, 1)), p)[0, 1]), 3)  # [V]
    4.183
    >>> g = tg.Graph("discharge", dt=1.0)
    >>> load = g.add(Constant(value=[2.0], unit="A", name="load"))
    >>> battery = g.add(BatteryCircuit(name="battery"))
    >>> g.connect(load.out.y, battery.inp.u)
    >>> hist = tg.Simulator(g).run(steps=4000)
    >>> eod = battery.end_of_discharge(hist["battery.x"], p)
    >>> float(hist.time[np.argmax(eod)])  # [s]
    3803.0
    """

    states = ("tb", "qb", "qcp", "qcs")
    state_units = ("K", "C", "C", "C")
    n_inputs = 1
    input_unit = "A"
    n_outputs = 2
    output_unit = None
    parameters = (
        "q_max",
        "c_max",
        "v_eod",
        "c_bp0",
        "c_bp1",
        "c_bp2",
        "c_bp3",
        "r_p",
        "r_s",
        "c_s",
        "r_cp0",
        "r_cp1",
        "r_cp2",
        "c_cp",
        "t_a",
        "j_t",
        "h_a",
        "h_cp",
        "h_cs",
    )
    positive = ("q_max", "c_max", "v_eod", "r_p", "r_s", "c_s", "r_cp0", "c_cp", "t_a", "j_t")
    non_negative = ("r_cp1", "r_cp2", "h_a", "h_cp", "h_cs")

    def __init__(
        self,
        q_max=7856.3254,
        c_max=7777.0,
        v_eod=3.0,
        c_bp0=-230.0,
        c_bp1=1.2,
        c_bp2=2079.9,
        c_bp3=27.055726,
        r_p=1e4,
        r_s=0.0538926,
        c_s=234.387,
        r_cp0=0.0697776,
        r_cp1=1.50528e-17,
        r_cp2=37.223,
        c_cp=14.8223,
        t_a=292.1,
        j_t=800.0,
        h_a=0.5,
        h_cp=19.0,
        h_cs=1.0,
        x0=(292.1, 7856.3254, 0.0, 0.0),
        **kwargs,
    ):
        super().__init__(x0, **kwargs)
        self.q_max = q_max
        self.c_max = c_max
        self.v_eod = v_eod
        self.c_bp0 = c_bp0
        self.c_bp1 = c_bp1
        self.c_bp2 = c_bp2
        self.c_bp3 = c_bp3
        self.r_p = r_p
        self.r_s = r_s
        self.c_s = c_s
        self.r_cp0 = r_cp0
        self.r_cp1 = r_cp1
        self.r_cp2 = r_cp2
        self.c_cp = c_cp
        self.t_a = t_a
        self.j_t = j_t
        self.h_a = h_a
        self.h_cp = h_cp
        self.h_cs = h_cs

    def check_params(self) -> None:
        super().check_params()
        for name in self.non_negative:
            value = getattr(self, name)
            if np.any(as_numbers(value) < 0):
                raise invalid_param(self, name, "a number >= 0, or one per asset", value)

    def state_of_charge(self, x: np.ndarray, p: dict[str, np.ndarray]) -> np.ndarray:
        """``SOC = 1 - (q_max - q_b) / c_max`` [-], shape (B,), from states ``x (B, 4)``."""
        return 1.0 - (p["q_max"] - x[:, 1]) / p["c_max"]

    def _voltages(self, x, p):
        """``SOC``, ``V_b``, ``V_cp``, ``V_cs``, each (B,)."""
        soc = self.state_of_charge(x, p)
        c_b = ((p["c_bp0"] * soc + p["c_bp1"]) * soc + p["c_bp2"]) * soc + p["c_bp3"]
        return soc, x[:, 1] / c_b, x[:, 2] / p["c_cp"], x[:, 3] / p["c_s"]

    def derivative(self, x, u, t, p):
        soc, v_b, v_cp, v_cs = self._voltages(x, p)
        r_cp = p["r_cp0"] + p["r_cp1"] * np.exp(p["r_cp2"] * (1.0 - soc))
        v = v_b - v_cp - v_cs
        i_b = u[:, 0] + v / p["r_p"]
        heat = p["h_a"] * (p["t_a"] - x[:, 0]) + p["h_cp"] * v_cp**2 / r_cp + p["h_cs"] * v_cs**2 / p["r_s"]
        dx = np.empty_like(x)  # laid out like x: an estimator's batch-last copies stay batch-last
        dx[:, 0] = heat / p["j_t"]
        dx[:, 1] = -i_b
        dx[:, 2] = i_b - v_cp / r_cp
        dx[:, 3] = i_b - v_cs / p["r_s"]
        return dx

    def observe(self, x, u, p):
        _, v_b, v_cp, v_cs = self._voltages(x, p)
        return np.stack([x[:, 0], v_b - v_cp - v_cs], axis=1)

    def end_of_discharge(self, x: np.ndarray, p: dict[str, np.ndarray]) -> np.ndarray:
        """The EOD event: ``v < v_eod``, a bool array of shape (B,) from states ``x (B, 4)``."""
        _, v_b, v_cp, v_cs = self._voltages(x, p)
        return v_b - v_cp - v_cs < p["v_eod"]
