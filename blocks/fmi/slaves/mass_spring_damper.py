"""A mass-spring-damper as a pythonfmu co-simulation slave: ``m s̈ + c ṡ + k s = F``, one RK4 step per doStep.

The same model and integrator as :class:`blocks.physics.MassSpringDamper`
with ``integrator="rk4", substeps=1``; :func:`blocks.fmi.examples.mass_spring_damper`
builds it into an FMU.
"""

from pythonfmu import Fmi2Causality, Fmi2Slave, Fmi2Variability, Real


class MassSpringDamper(Fmi2Slave):
    """Parameters ``mass`` [kg], ``damping`` [N s/m], ``stiffness`` [N/m], ``s0`` [m], ``v0`` [m/s];
    input ``force`` [N]; outputs position ``s`` [m] and velocity ``v`` [m/s]."""

    description = "Mass-spring-damper m s'' + c s' + k s = F, RK4"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.mass, self.damping, self.stiffness, self.s0, self.v0 = 1.0, 0.5, 4.0, 0.0, 0.0
        self.force, self.s, self.v = 0.0, 0.0, 0.0
        for name in ("mass", "damping", "stiffness", "s0", "v0"):
            self.register_variable(Real(name, causality=Fmi2Causality.parameter, variability=Fmi2Variability.fixed))
        self.register_variable(Real("force", causality=Fmi2Causality.input))
        self.register_variable(Real("s", causality=Fmi2Causality.output))
        self.register_variable(Real("v", causality=Fmi2Causality.output))

    def exit_initialization_mode(self):
        self.s, self.v = self.s0, self.v0

    def derivative(self, s, v):
        return v, (self.force - self.damping * v - self.stiffness * s) / self.mass

    def do_step(self, current_time, step_size):
        h, s, v = step_size, self.s, self.v
        k1 = self.derivative(s, v)
        k2 = self.derivative(s + h / 2 * k1[0], v + h / 2 * k1[1])
        k3 = self.derivative(s + h / 2 * k2[0], v + h / 2 * k2[1])
        k4 = self.derivative(s + h * k3[0], v + h * k3[1])
        self.s = s + h / 6 * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0])
        self.v = v + h / 6 * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1])
        return True
