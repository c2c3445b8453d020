"""Time-dependent uniform fields for OpenMM runs: protocols and the reporter that applies them.

A :class:`FieldProtocol` is E(t): a (3,) field in V/Å at time t in ps.  Kinds:

- :class:`ConstantField`: E₀ from ``start_ps`` on (zero before);
- :class:`RampField`: linear from E_a at ``start_ps`` to E_b at ``end_ps``, held after;
- :class:`SinusoidalField`: A n̂ sin(2π f (t − t₀) + φ) + offset, from t₀ on;
- :class:`GaussianPulse`: A n̂ exp(−(t − t_c)²/(2σ²)) cos(2π f (t − t_c) + φ) (f = 0: a
  unipolar pulse);
- :class:`PiecewiseField`: a table of times and fields, linear or step interpolation
  (:meth:`PiecewiseField.from_file` reads ``time_ps Ex Ey Ez`` rows, V/Å).

:class:`FieldProtocolReporter` applies a protocol to a running OpenMM ``Simulation`` through
the reporter mechanism: every ``interval`` steps it sets the global parameters
``pqeq_field_x/y/z`` (V/nm, converted with :mod:`openmm_pqeq.units`) to E at the middle of
the next interval, so the field is a staircase that lags the protocol by nothing on
average.  Choose ``interval × time step`` well below the shortest period of the protocol.
Amplitudes, times and frequencies may also be given as ``openmm.unit`` quantities
(frequencies as inverse times: 1 THz = 1/ps).

:func:`parse_field_protocol` reads the command-line syntax of ``openmm-pqeq md
--field-protocol`` (:data:`PROTOCOL_SYNTAX`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Dict, Optional, Sequence, Union

import numpy as np

from .units import V_PER_A_TO_V_PER_NM

#: The ``--field-protocol`` syntax, as ``openmm-pqeq md --help`` prints it.
PROTOCOL_SYNTAX = """\
field protocols (--field-protocol KIND:key=value,...; fields in V/Å, times in ps,
frequencies in THz, phases in degrees; axis=x|y|z or direction=X/Y/Z; the protocol's
t = 0 is the start of the field phase):
  constant:amplitude=0.1,axis=z
  ramp:from=0,to=0.3,start_ps=0,end_ps=5,axis=z
  sin:amplitude=0.1,frequency_THz=1,phase_deg=0,offset=0,axis=z
  pulse:amplitude=0.5,center_ps=1,sigma_ps=0.1,frequency_THz=0,phase_deg=0,axis=z
  table:file=field.txt,interpolation=linear   (rows: time_ps Ex Ey Ez; or step)
"""


def _magnitude(value, unit_name: str) -> float:
    """``value`` as a float in ``unit_name`` ("V/A", "ps", "THz"), converting openmm.unit quantities."""
    try:
        from openmm import unit
    except ImportError:  # pragma: no cover - openmm is a dependency
        return float(value)
    if unit.is_quantity(value):
        target = {"V/A": unit.volt / unit.angstrom, "ps": unit.picosecond, "THz": unit.picosecond**-1}[unit_name]
        return float(value.value_in_unit(target))
    return float(value)


def _direction(direction: Union[str, Sequence[float]]) -> np.ndarray:
    if isinstance(direction, str):
        axes = {"x": (1.0, 0.0, 0.0), "y": (0.0, 1.0, 0.0), "z": (0.0, 0.0, 1.0)}
        if direction not in axes:
            raise ValueError(f"axis is {direction!r}; options are x, y, z")
        return np.array(axes[direction])
    vector = np.asarray(direction, dtype=float)
    if vector.shape != (3,) or not np.isfinite(vector).all() or np.linalg.norm(vector) == 0:
        raise ValueError(f"direction must be a non-zero 3-vector, got {list(np.ravel(vector))}")
    return vector / np.linalg.norm(vector)


class FieldProtocol:
    """Base class: :meth:`field_at` gives E(t) (3,) in V/Å at ``time_ps``; ``direction`` (3,)
    is the unit vector the field points along (for a table: that of its strongest entry)."""

    direction: np.ndarray = np.array([0.0, 0.0, 1.0])

    def field_at(self, time_ps: float) -> np.ndarray:
        """The field E (3,) in V/Å at ``time_ps`` (each protocol implements it)."""
        raise NotImplementedError

    def field_series(self, times_ps) -> np.ndarray:
        """E at each of ``times_ps`` (T,) as (T, 3) V/Å."""
        return np.array([self.field_at(float(t)) for t in np.ravel(times_ps)])


class ConstantField(FieldProtocol):
    """E₀ (3,) V/Å from ``start_ps`` on, zero before.

    >>> ConstantField((0, 0, 0.1)).field_at(3.0).tolist()
    [0.0, 0.0, 0.1]
    """

    def __init__(self, field_V_per_A: Sequence[float], start_ps: float = 0.0):
        self.field = np.array([_magnitude(f, "V/A") for f in field_V_per_A], dtype=float)
        if self.field.shape != (3,):
            raise ValueError(f"field must have 3 components (V/Å), got {list(field_V_per_A)}")
        self.start_ps = _magnitude(start_ps, "ps")
        if np.linalg.norm(self.field) > 0:
            self.direction = self.field / np.linalg.norm(self.field)

    def field_at(self, time_ps: float) -> np.ndarray:
        return self.field.copy() if time_ps >= self.start_ps else np.zeros(3)


class RampField(FieldProtocol):
    """Linear from ``from_V_per_A`` at ``start_ps`` to ``to_V_per_A`` at ``end_ps`` along
    ``direction``; ``from`` before the start, ``to`` after the end."""

    def __init__(self, from_V_per_A, to_V_per_A, start_ps: float, end_ps: float,
                 direction: Union[str, Sequence[float]] = "z"):
        self.low, self.high = _magnitude(from_V_per_A, "V/A"), _magnitude(to_V_per_A, "V/A")
        self.start_ps, self.end_ps = _magnitude(start_ps, "ps"), _magnitude(end_ps, "ps")
        if not self.end_ps > self.start_ps:
            raise ValueError(f"ramp end_ps ({self.end_ps}) must be after start_ps ({self.start_ps})")
        self.direction = _direction(direction)

    def field_at(self, time_ps: float) -> np.ndarray:
        s = min(max((time_ps - self.start_ps) / (self.end_ps - self.start_ps), 0.0), 1.0)
        return (self.low + s * (self.high - self.low)) * self.direction


class SinusoidalField(FieldProtocol):
    """A n̂ sin(2π f (t − t₀) + φ) + offset n̂ for t ≥ t₀ (``start_ps``), zero before;
    ``phase_deg`` φ in degrees, ``frequency_THz`` f (1 THz = 33.36 cm⁻¹)."""

    def __init__(self, amplitude_V_per_A, frequency_THz, phase_deg: float = 0.0, offset_V_per_A=0.0,
                 direction: Union[str, Sequence[float]] = "z", start_ps: float = 0.0):
        self.amplitude = _magnitude(amplitude_V_per_A, "V/A")
        self.frequency_THz = _magnitude(frequency_THz, "THz")
        if not self.frequency_THz > 0:
            raise ValueError(f"frequency_THz is {self.frequency_THz} but must be positive")
        self.phase = math.radians(float(phase_deg))
        self.offset = _magnitude(offset_V_per_A, "V/A")
        self.direction = _direction(direction)
        self.start_ps = _magnitude(start_ps, "ps")

    def field_at(self, time_ps: float) -> np.ndarray:
        if time_ps < self.start_ps:
            return np.zeros(3)
        angle = 2.0 * math.pi * self.frequency_THz * (time_ps - self.start_ps) + self.phase
        return (self.amplitude * math.sin(angle) + self.offset) * self.direction


class GaussianPulse(FieldProtocol):
    """A n̂ exp(−(t − t_c)²/(2σ²)) cos(2π f (t − t_c) + φ); ``sigma_ps`` σ (FWHM = 2.355 σ)."""

    def __init__(self, amplitude_V_per_A, center_ps, sigma_ps, frequency_THz=0.0, phase_deg: float = 0.0,
                 direction: Union[str, Sequence[float]] = "z"):
        self.amplitude = _magnitude(amplitude_V_per_A, "V/A")
        self.center_ps, self.sigma_ps = _magnitude(center_ps, "ps"), _magnitude(sigma_ps, "ps")
        if not self.sigma_ps > 0:
            raise ValueError(f"sigma_ps is {self.sigma_ps} but must be positive")
        self.frequency_THz = _magnitude(frequency_THz, "THz")
        self.phase = math.radians(float(phase_deg))
        self.direction = _direction(direction)

    def field_at(self, time_ps: float) -> np.ndarray:
        u = time_ps - self.center_ps
        envelope = math.exp(-0.5 * (u / self.sigma_ps) ** 2)
        carrier = math.cos(2.0 * math.pi * self.frequency_THz * u + self.phase)
        return self.amplitude * envelope * carrier * self.direction


class PiecewiseField(FieldProtocol):
    """Fields (K, 3) V/Å at increasing ``times_ps`` (K,), interpolated ``"linear"`` or held
    (``"step"``: the last entry at or before t); before the first time: the first entry;
    after the last: the last entry."""

    def __init__(self, times_ps: Sequence[float], fields_V_per_A, interpolation: str = "linear"):
        self.times = np.asarray(times_ps, dtype=float)
        self.fields = np.asarray(fields_V_per_A, dtype=float)
        if self.times.ndim != 1 or self.times.size < 1 or self.fields.shape != (self.times.size, 3):
            raise ValueError(f"a field table needs K times and (K, 3) fields, got {list(self.times.shape)} and "
                             f"{list(self.fields.shape)}")
        if (np.diff(self.times) <= 0).any():
            raise ValueError("the times of a field table must increase strictly")
        if interpolation not in ("linear", "step"):
            raise ValueError(f"interpolation is {interpolation!r}; options are linear, step")
        self.interpolation = interpolation
        strongest = self.fields[np.argmax(np.linalg.norm(self.fields, axis=1))]
        if np.linalg.norm(strongest) > 0:
            self.direction = strongest / np.linalg.norm(strongest)

    @classmethod
    def from_file(cls, path: Union[str, Path], interpolation: str = "linear") -> "PiecewiseField":
        """Read rows ``time_ps Ex Ey Ez`` (V/Å; whitespace or commas, ``#`` comments)."""
        from .analysis.run import read_table

        table = read_table(path)
        if table.shape[1] != 4:
            raise ValueError(f"{path}: a field table has 4 columns (time_ps Ex Ey Ez), found {table.shape[1]}")
        return cls(table[:, 0], table[:, 1:], interpolation)

    def field_at(self, time_ps: float) -> np.ndarray:
        if self.interpolation == "step":
            k = max(int(np.searchsorted(self.times, time_ps, side="right")) - 1, 0)
            return self.fields[k].copy()
        return np.array([np.interp(time_ps, self.times, self.fields[:, c]) for c in range(3)])


class FieldProtocolReporter:
    """OpenMM reporter that sets ``pqeq_field_x/y/z`` from a :class:`FieldProtocol`.

    >>> reporter = FieldProtocolReporter(SinusoidalField(0.1, 1.0), 10, "field.csv")  # doctest: +SKIP
    >>> reporter.apply(simulation); simulation.reporters.append(reporter)              # doctest: +SKIP

    Every ``interval`` steps (at steps that are multiples of it) the field is set to the
    protocol at the middle of the steps until the next update; the protocol's time origin is
    ``origin_ps`` of simulation time (default: the time of the first :meth:`apply`), and before
    it the field is zero.  With ``file`` each update writes a row
    ``step,time_ps,Ex,Ey,Ez`` (V/Å; the field in force from that step on; ``append`` continues
    an existing file).  Call :meth:`apply`
    once before stepping (a reporter only fires at the end of an interval), and append this
    reporter after a :class:`~openmm_pqeq.integrations.reporters.PQEqReporter` so that charges
    reported at a step are those of the field that acted during it.
    """

    def __init__(self, protocol: FieldProtocol, interval: int, file: Optional[Union[str, Path]] = None,
                 origin_ps: Optional[float] = None, append: bool = False):
        if not isinstance(protocol, FieldProtocol):
            raise TypeError(f"protocol must be a FieldProtocol, got {type(protocol).__name__}")
        if int(interval) != interval or interval < 1:
            raise ValueError(f"interval is {interval} but must be an integer >= 1")
        self.protocol = protocol
        self.interval = int(interval)
        self.origin_ps = None if origin_ps is None else _magnitude(origin_ps, "ps")
        self._out = None
        if file is not None:  # append: continue an existing file (a resumed run), no second header
            self._out = open(file, "a" if append else "w")
            if not append:
                self._out.write("# step,time_ps,Ex_V_per_A,Ey_V_per_A,Ez_V_per_A\n")

    def describeNextReport(self, simulation):
        return (self.interval - simulation.currentStep % self.interval, False, False, False, False, False)

    def report(self, simulation, state):
        self.apply(simulation)

    def apply(self, simulation) -> np.ndarray:
        """Set the field for the next ``interval`` steps now; returns it (3,) V/Å."""
        from openmm import unit

        from .integrations.setup import FIELD_PARAMETERS

        now_ps = simulation.context.getTime().value_in_unit(unit.picosecond)
        if self.origin_ps is None:
            self.origin_ps = now_ps
        step_ps = simulation.integrator.getStepSize().value_in_unit(unit.picosecond)
        steps_held = self.interval - simulation.currentStep % self.interval  # until the next update
        protocol_ps = now_ps - self.origin_ps + 0.5 * steps_held * step_ps
        field = self.protocol.field_at(protocol_ps) if protocol_ps >= 0 else np.zeros(3)
        for name, value in zip(FIELD_PARAMETERS, field * V_PER_A_TO_V_PER_NM):
            simulation.context.setParameter(name, float(value))
        if self._out is not None:
            self._out.write(f"{simulation.currentStep:d},{now_ps:.6f},"
                            + ",".join(f"{v:.10g}" for v in field) + "\n")
            self._out.flush()
        return field

    def close(self) -> None:
        if self._out is not None and not self._out.closed:
            self._out.close()


_KINDS = {
    "constant": ("amplitude", "axis", "direction", "start_ps"),
    "ramp": ("from", "to", "start_ps", "end_ps", "axis", "direction"),
    "sin": ("amplitude", "frequency_THz", "phase_deg", "offset", "axis", "direction", "start_ps"),
    "pulse": ("amplitude", "center_ps", "sigma_ps", "frequency_THz", "phase_deg", "axis", "direction"),
    "table": ("file", "interpolation"),
}
_REQUIRED = {"constant": ("amplitude",), "ramp": ("to", "end_ps"), "sin": ("amplitude", "frequency_THz"),
             "pulse": ("amplitude", "center_ps", "sigma_ps"), "table": ("file",)}


def parse_field_protocol(spec: str) -> FieldProtocol:
    """A :class:`FieldProtocol` from ``KIND:key=value,...`` (:data:`PROTOCOL_SYNTAX`).

    >>> parse_field_protocol("sin:amplitude=0.1,frequency_THz=2,axis=x").field_at(0.125).round(6).tolist()
    [0.1, 0.0, 0.0]
    """
    kind, _, rest = spec.partition(":")
    kind = kind.strip()
    if kind not in _KINDS:
        raise ValueError(f"field protocol {spec!r}: unknown kind {kind!r}; options are {', '.join(_KINDS)}")
    values: Dict[str, str] = {}
    for item in filter(None, (part.strip() for part in rest.split(","))):
        key, sep, value = item.partition("=")
        if not sep or key.strip() not in _KINDS[kind]:
            raise ValueError(f"field protocol {spec!r}: {item!r} is not key=value with a key of {kind!r} "
                             f"({', '.join(_KINDS[kind])})")
        values[key.strip()] = value.strip()
    missing = [k for k in _REQUIRED[kind] if k not in values]
    if missing:
        raise ValueError(f"field protocol {spec!r}: {kind!r} needs {', '.join(missing)}")
    if "axis" in values and "direction" in values:
        raise ValueError(f"field protocol {spec!r}: give axis or direction, not both")

    def number(key: str, default: float = 0.0) -> float:
        try:
            return float(values.get(key, default))
        except ValueError:
            raise ValueError(f"field protocol {spec!r}: {key}={values[key]!r} is not a number") from None

    direction: Union[str, Sequence[float]] = values.get("axis", "z")
    if "direction" in values:
        try:
            direction = [float(v) for v in values["direction"].split("/")]
        except ValueError:
            raise ValueError(f"field protocol {spec!r}: direction must be X/Y/Z numbers") from None
    if kind == "constant":
        return ConstantField(number("amplitude") * _direction(direction), number("start_ps"))
    if kind == "ramp":
        return RampField(number("from"), number("to"), number("start_ps"), number("end_ps"), direction)
    if kind == "sin":
        return SinusoidalField(number("amplitude"), number("frequency_THz"), number("phase_deg"), number("offset"),
                               direction, number("start_ps"))
    if kind == "pulse":
        return GaussianPulse(number("amplitude"), number("center_ps"), number("sigma_ps"), number("frequency_THz"),
                             number("phase_deg"), direction)
    return PiecewiseField.from_file(values["file"], values.get("interpolation", "linear"))
