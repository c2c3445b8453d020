"""Install openmm_pqeq: ``pip install -e .`` (the Makefile does this with pinned dependencies).

The compiled operators ``torch.ops.openmm_pqeq.*`` (``plugin/``, ``CMakeLists.txt``) are built by
``python setup.py build_ext --inplace`` (``make install`` runs it) into
``openmm_pqeq/lib/torch-<major>.<minor>/``; everything works without them (pure-PyTorch fallback).

Environment variables:

- ``OPENMM_PQEQ_BUILD_OPS``: ``0`` skips the operators, ``1`` makes a failed build an error;
  unset: build them when torch, CMake and a C++ compiler are present, else warn and go on.
- ``OPENMM_PQEQ_BUILD_CUDA``: ``0``/``1`` forces the CUDA part off/on; unset: on when ``nvcc``
  is found (``CUDA_HOME`` must then be the toolkit folder if ``nvcc`` on PATH is a wrapper).
- ``TORCH_CUDA_ARCH_LIST`` (e.g. ``"8.0;9.0"``): GPU architectures (default 8.0 and 9.0).
- ``OPENMM_PQEQ_BUILD_TYPE``: CMake build type (``Release``, ``RelWithDebInfo``, ``Debug``).

The CMake build folder ``build/ops-torch-<major>.<minor>`` is kept, so a rebuild with unchanged
sources compiles nothing.
"""

import os
import shutil
import subprocess
import warnings
from pathlib import Path

from setuptools import Extension, find_packages, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).parent.resolve()


def requirements(name: str) -> list:
    lines = (HERE / name).read_text().splitlines()
    return [line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()]


class CMakeExtension(Extension):
    """A library built by CMake (no sources for setuptools to compile)."""

    def __init__(self, name: str):
        super().__init__(name, sources=[])


def _cuda_home():
    """The CUDA toolkit folder (where nvcc really lives), or None."""
    for key in ("CUDA_HOME", "CUDA_PATH"):
        if os.environ.get(key) and (Path(os.environ[key]) / "bin" / "nvcc").exists():
            return Path(os.environ[key])
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        return None
    real = Path(os.path.realpath(nvcc))
    if (real.parent.parent / "include" / "cuda_runtime.h").exists():
        return real.parent.parent
    # a wrapper script (e.g. `exec /usr/local/cuda-13.0/bin/nvcc "$@"`): read the path it runs
    try:
        for word in real.read_text(errors="ignore").split():
            candidate = Path(word.strip("'\""))
            if candidate.name == "nvcc" and (candidate.parent.parent / "include" / "cuda_runtime.h").exists():
                return candidate.parent.parent
    except OSError:
        pass
    return None


class cmake_ext(build_ext):
    """Build ``plugin/`` with CMake into ``openmm_pqeq/lib/torch-X.Y/`` (vesin's layout)."""

    def run(self):
        for ext in self.extensions:
            self.build_operators(ext)

    def get_outputs(self):
        return []

    def build_operators(self, ext):
        mode = os.environ.get("OPENMM_PQEQ_BUILD_OPS", "")
        if mode == "0":
            print("openmm_pqeq: OPENMM_PQEQ_BUILD_OPS=0, not building the operators (pure-PyTorch fallback)")
            return
        try:
            self._build(mode == "1")
        except Exception as error:  # the operators are optional unless asked for
            if mode == "1":
                raise
            warnings.warn(f"openmm_pqeq: operators not built ({error}); the pure-PyTorch fallback is used")

    def _build(self, required: bool):
        try:
            import torch
        except ImportError as error:
            raise RuntimeError("torch is not importable in this environment (build isolation?); "
                               "run `python setup.py build_ext --inplace` in the environment") from error
        if shutil.which("cmake") is None:
            raise RuntimeError("cmake not found")
        build_type = os.environ.get("OPENMM_PQEQ_BUILD_TYPE", "Release")
        if build_type not in ("Release", "RelWithDebInfo", "Debug", "MinSizeRel"):
            raise ValueError(f"OPENMM_PQEQ_BUILD_TYPE is {build_type!r}; options are Release, RelWithDebInfo, "
                             "Debug, MinSizeRel")
        major, minor = torch.__version__.split("+")[0].split(".")[:2]
        tag = f"torch-{major}.{minor}"
        package = HERE / "openmm_pqeq" if self.inplace else Path(self.build_lib).resolve() / "openmm_pqeq"
        install_dir = package / "lib" / tag
        build_dir = HERE / "build" / f"ops-{tag}"
        build_dir.mkdir(parents=True, exist_ok=True)
        args = [
            f"-DCMAKE_BUILD_TYPE={build_type}",
            f"-DPQEQ_TORCH_ROOT={Path(torch.__file__).parent}",
            f"-DPQEQ_CXX11_ABI={int(torch._C._GLIBCXX_USE_CXX11_ABI)}",
        ]
        want_cuda = os.environ.get("OPENMM_PQEQ_BUILD_CUDA", "")
        cuda_home = _cuda_home() if want_cuda != "0" else None
        if want_cuda == "1" and cuda_home is None:
            raise RuntimeError("OPENMM_PQEQ_BUILD_CUDA=1 but no CUDA toolkit found (set CUDA_HOME)")
        if cuda_home is not None and torch.version.cuda is not None:
            archs = os.environ.get("TORCH_CUDA_ARCH_LIST", "8.0;9.0").replace(" ", ";").replace(",", ";")
            archs = ";".join(a.replace("+PTX", "").replace(".", "") for a in archs.split(";") if a)
            args += ["-DPQEQ_BUILD_CUDA=ON", f"-DCMAKE_CUDA_COMPILER={cuda_home / 'bin' / 'nvcc'}",
                     f"-DCUDAToolkit_ROOT={cuda_home}", f"-DCMAKE_CUDA_ARCHITECTURES={archs}"]
        else:
            args += ["-DPQEQ_BUILD_CUDA=OFF"]
        if shutil.which("ninja") and not (build_dir / "CMakeCache.txt").exists():
            args += ["-G", "Ninja"]
        jobs = os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 2))
        subprocess.run(["cmake", "-S", str(HERE), "-B", str(build_dir), *args], check=True)
        subprocess.run(["cmake", "--build", str(build_dir), "--parallel", jobs], check=True)
        subprocess.run(["cmake", "--install", str(build_dir), "--prefix", str(install_dir)], check=True,
                       stdout=subprocess.DEVNULL)
        # build output, never committed
        (package / "lib" / ".gitignore").write_text("*\n")
        print(f"openmm_pqeq: operators installed in {install_dir}")


setup(
    name="openmm_pqeq",
    version="0.1.0",
    description="Equivariant ML potential with polarizable charge equilibration (PQEq), "
    "external fields and D3 dispersion, as an OpenMM force",
    long_description=(HERE / "README.md").read_text(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["openmm_pqeq", "openmm_pqeq.*"]),
    package_data={"openmm_pqeq": ["data/*.json", "data/*.pt", "data/*.npz", "lib/*/*.so", "lib/*/*.dylib"]},
    ext_modules=[CMakeExtension("openmm_pqeq.lib")],
    cmdclass={"build_ext": cmake_ext},
    python_requires=">=3.10",
    install_requires=requirements("requirements.txt"),
    extras_require={
        "test": requirements("requirements-test.txt"),
        "dft": ["pyscf==2.14.0", "rdkit==2026.9.1"],  # reference-data generation (openmm-pqeq label, label-response)
    },
    entry_points={
        "console_scripts": ["openmm-pqeq = openmm_pqeq.cli.main:main"],
        "openmmml.potentials": ["pqeq = openmm_pqeq.integrations.openmmml_plugin:PQEqPotentialImplFactory",
                                "pqeq-water-demo = openmm_pqeq.integrations.openmmml_plugin:PQEqPotentialImplFactory",
                                "pqeq-water-demo-v1 = openmm_pqeq.integrations.openmmml_plugin:PQEqPotentialImplFactory"],
    },
)
