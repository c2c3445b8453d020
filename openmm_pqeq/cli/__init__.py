"""The ``openmm-pqeq`` command line."""
