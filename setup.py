"""Install openmm_pqeq: ``pip install -e .`` (the Makefile does this with pinned dependencies)."""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent


def requirements(name: str) -> list:
    lines = (HERE / name).read_text().splitlines()
    return [line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()]


setup(
    name="openmm_pqeq",
    version="0.1.0",
    description="Equivariant ML potential with polarizable charge equilibration (PQEq), "
    "external fields and D3 dispersion, as an OpenMM force",
    long_description=(HERE / "README.md").read_text(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["openmm_pqeq", "openmm_pqeq.*"]),
    package_data={"openmm_pqeq": ["data/*.json", "data/*.pt", "data/*.npz"]},
    python_requires=">=3.10",
    install_requires=requirements("requirements.txt"),
    extras_require={
        "test": requirements("requirements-test.txt"),
        "dft": ["pyscf==2.14.0"],  # reference-data generation (openmm-pqeq label)
    },
    entry_points={
        "console_scripts": ["openmm-pqeq = openmm_pqeq.cli.main:main"],
        "openmmml.potentials": ["pqeq = openmm_pqeq.integrations.openmmml_plugin:PQEqPotentialImplFactory"],
    },
)
