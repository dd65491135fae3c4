"""The pump of :class:`blocks.physics.PumpLike` as a pythonfmu co-simulation slave, one RK4 step per doStep.

The same model and integrator as ``PumpLike(integrator="rk4", substeps=1)``;
:func:`blocks.fmi.examples.pump` builds it into an FMU. The states ``omega``
and ``q`` are local variables with ``initial="exact"``, so FMI lets them be
set before initialisation (what :class:`blocks.fmi.CoSimModel` does), and the
output ``flow`` is computed from ``q`` when it is read.
"""

from pythonfmu import Fmi2Causality, Fmi2Initial, Fmi2Slave, Fmi2Variability, Real

PARAMETERS = {  # name: (start, variability), as PumpLike's defaults
    "efficiency": (1.0, Fmi2Variability.tunable),
    "friction": (1e-4, Fmi2Variability.fixed),
    "inertia": (1e-3, Fmi2Variability.fixed),
    "motor_constant": (0.05, Fmi2Variability.fixed),
    "resistance": (1.0, Fmi2Variability.fixed),
    "load_coefficient": (2.5e-6, Fmi2Variability.fixed),
    "flow_coefficient": (5e-6, Fmi2Variability.fixed),
    "flow_time_constant": (0.5, Fmi2Variability.fixed),
}


class Pump(Fmi2Slave):
    """Input ``voltage`` [V]; states ``omega`` [rad/s], ``q`` [m3/s]; output ``flow`` [m3/s]; PumpLike's parameters."""

    description = "DC motor and centrifugal pump, RK4"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.voltage, self.omega, self.q = 0.0, 0.0, 0.0
        for name, (start, variability) in PARAMETERS.items():
            setattr(self, name, start)
            self.register_variable(Real(name, causality=Fmi2Causality.parameter, variability=variability))
        self.register_variable(Real("voltage", causality=Fmi2Causality.input))
        for name in ("omega", "q"):
            self.register_variable(Real(name, causality=Fmi2Causality.local, initial=Fmi2Initial.exact))
        self.register_variable(Real("flow", causality=Fmi2Causality.output, getter=lambda: self.q))

    def derivative(self, omega, q):
        K, R, J, b = self.motor_constant, self.resistance, self.inertia, self.friction
        i = (self.voltage - K * omega) / R
        d_omega = (K * i - b * omega - self.load_coefficient * omega * abs(omega)) / J
        d_q = (self.efficiency * self.flow_coefficient * omega - q) / self.flow_time_constant
        return d_omega, d_q

    def do_step(self, current_time, step_size):
        h, omega, q = step_size, self.omega, self.q
        k1 = self.derivative(omega, q)
        k2 = self.derivative(omega + h / 2 * k1[0], q + h / 2 * k1[1])
        k3 = self.derivative(omega + h / 2 * k2[0], q + h / 2 * k2[1])
        k4 = self.derivative(omega + h * k3[0], q + h * k3[1])
        self.omega = omega + h / 6 * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0])
        self.q = q + h / 6 * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1])
        return True
