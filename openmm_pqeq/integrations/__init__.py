"""Integrations: OpenMM forces (TorchForce, PythonForce), reporters, openmm-ml, ASE."""
