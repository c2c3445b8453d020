"""PQEq runs as TorchScript (as inside an OpenMM TorchForce): script, freeze, save, load."""

import io

import pytest
import torch

from openmm_pqeq.electrostatics import PQEq

from helpers import water_box, water_dimer


@pytest.mark.parametrize("mode", ["physical", "reaxnet"])
def test_script_save_load_matches_eager(mode):
    pos, num, cell = water_box()
    if mode == "reaxnet":  # minimum image needs cells >= 25 Å: use the open dimer
        pos, num = water_dimer()
        cell = None
    field = torch.tensor([0.0, 0.1, 0.0])
    eager = PQEq(["O", "H"], mode=mode)(pos, num, cell, field)
    buffer = io.BytesIO()
    torch.jit.save(torch.jit.script(PQEq(["O", "H"], mode=mode)), buffer)
    buffer.seek(0)
    loaded = torch.jit.load(buffer)
    out = loaded(pos, num, cell, field)
    assert float(out["energy"]) == pytest.approx(float(eager["energy"]), abs=1e-10)
    assert torch.allclose(out["charges"], eager["charges"], atol=1e-10)


def test_warm_start_persists_in_a_frozen_module():
    pos, num, cell = water_box()
    frozen = torch.jit.freeze(torch.jit.script(PQEq(["O", "H"])).eval())
    first = frozen(pos, num, cell, torch.zeros(3))
    again = frozen(pos + 0.001, num, cell, torch.zeros(3))
    assert int(first["iterations"]) > 1
    assert int(again["iterations"]) < int(first["iterations"])


def test_frozen_module_backward_every_step():
    """openmm-torch freezes the module, which deletes aten::detach; warm-start state carried
    between steps must still not tie one step's graph to the next."""
    pos, num, cell = water_box()
    frozen = torch.jit.freeze(torch.jit.script(PQEq(["O", "H"])).eval())
    for step in range(3):
        x = (pos + 0.002 * step * torch.arange(18.0).reshape(6, 3).sin()).requires_grad_(True)
        out = frozen(x, num, cell, torch.tensor([0.0, 0.0, 0.1]))
        out["energy"].backward()
        assert not out["charges"].requires_grad
        assert torch.isfinite(x.grad).all()
