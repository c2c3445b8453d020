"""E0Network as a module: TorchScript, config round trip, presets, statistics, errors."""

import copy
import doctest

import pytest
import torch
from e3nn.util.jit import compile as e3nn_compile

import openmm_pqeq.nn
from openmm_pqeq.nn import PRESETS, E0Network, average_num_neighbors, e0, interaction, radial, tensor_product  # noqa: F401


def test_script_save_load_round_trip(net, system, energy_and_forces, tmp_path):
    positions, numbers, cell = system
    scripted = e3nn_compile(copy.deepcopy(net))
    assert isinstance(scripted, torch.jit.ScriptModule)
    torch.jit.save(scripted, tmp_path / "e0.pt")
    loaded = torch.jit.load(tmp_path / "e0.pt")
    energy, forces = energy_and_forces(net, positions, numbers, cell)
    for module in (scripted, loaded):
        energy_s, forces_s = energy_and_forces(module, positions, numbers, cell)
        assert energy_s.item() == pytest.approx(energy.item(), abs=1e-12)
        torch.testing.assert_close(forces_s, forces, atol=1e-12, rtol=0)


def test_scripted_error_names_the_element(net, open_system):
    positions, numbers, _ = open_system
    scripted = e3nn_compile(copy.deepcopy(net))
    numbers = numbers.clone()
    numbers[2] = 26
    with pytest.raises(torch.jit.Error, match=r"element Fe \(Z=26\) is not supported .*supported: H, O, Si"):
        scripted(positions, numbers, None)


def test_config_rebuilds_the_network(net, periodic_system):
    positions, numbers, cell = periodic_system
    state = net.state_dict()
    assert {"per_species_scale", "per_species_shift", "species_embedding"} <= set(state)
    assert not any("coefficients" in key or "species_of_z" in key for key in state)  # derived, not saved
    twin = E0Network(**net.config).double()
    twin.load_state_dict(state)
    torch.testing.assert_close(twin(positions, numbers, cell), net(positions, numbers, cell), atol=0, rtol=0)


def test_presets(open_system):
    published = E0Network.from_preset("published", ["H", "O"])
    assert published.config == {
        "elements": [1, 8], "num_blocks": 6, "l_max": 2, "hidden_irreps": "128x0e+64x1e+4x2e", "num_bessel": 8,
        "r_max": 5.0, "radial_mlp": [64, 64], "avg_num_neighbors": 30.0, "parity": False, "polynomial_p": 6,
    }
    assert len(published.blocks) == 6 and str(published.blocks[0].irreps_out) == "128x0e+64x1e+4x2e"
    assert str(published.blocks[-1].irreps_out) == "128x0e"  # the readout needs scalars only
    small = E0Network.from_preset("small", list(range(1, 95)), r_max=4.0).double()
    assert small.config["r_max"] == 4.0 and small.config["num_blocks"] == PRESETS["small"]["num_blocks"]
    positions, numbers, _ = open_system
    assert small(positions, numbers + 80).shape == (8,)  # Hg, Tl, Rn, ... up to Pu
    with pytest.raises(ValueError, match=r"unknown preset 'huge' \(options are \['published', 'small'\]\)"):
        E0Network.from_preset("huge", [1])
    with pytest.raises(TypeError, match="unexpected keyword argument 'cutoff'"):
        E0Network.from_preset("small", [1], cutoff=4.0)


def test_species_statistics(make_net, open_system):
    positions, numbers, _ = open_system
    net = make_net()
    before = net(positions, numbers).detach()
    net.set_species_statistics(shift={"H": 1.0, 8: 2.0})
    scale_si = net.per_species_scale[2].item()
    expected_shift = torch.tensor([{1: 1.3, 8: 3.1, 14: 0.0}[int(z)] for z in numbers])
    torch.testing.assert_close(net(positions, numbers).detach(), before + expected_shift)
    net.set_species_statistics(scale=2.0)
    assert net.per_species_scale.tolist() == [2.0, 2.0, 2.0] and scale_si == 0.9
    with pytest.raises(ValueError, match=r"`shift` has element 'C', not among the model's elements \(H, O, Si\)"):
        net.set_species_statistics(shift={"C": 0.0})
    with pytest.raises(ValueError, match="unknown element symbol 'Xx'"):
        net.set_species_statistics(scale={"Xx": 1.0})


def test_input_errors(net, open_system):
    positions, numbers, _ = open_system
    with pytest.raises(ValueError, match=r"element C \(Z=6\) is not supported by this E0Network \(supported: H, O, Si\)"):
        net(positions, torch.tensor([1, 8, 6, 1, 8, 14, 1, 8]))
    with pytest.raises(ValueError, match="atomic number 0, outside 1..103"):
        net(positions, numbers * 0)
    with pytest.raises(ValueError, match="atomic number 200, outside"):
        net(positions, numbers + 199)
    with pytest.raises(ValueError, match="integer atomic numbers, got dtype torch.float64"):
        net(positions, numbers.double())
    with pytest.raises(ValueError, match=r"`positions` must have shape \(N, 3\), got \[8, 2\]"):
        net(positions[:, :2], numbers)
    with pytest.raises(ValueError, match=r"`numbers` must have shape \(8,\), got \[7\]"):
        net(positions, numbers[:7])
    with pytest.raises(ValueError, match=r"`cell` must have shape \(3, 3\), got \[3\]"):
        net(positions, numbers, torch.ones(3))
    with pytest.raises(ValueError, match="`positions` has dtype torch.float32 but the network is torch.float64"):
        net(positions.float(), numbers)
    assert net(positions, numbers.to(torch.int32)).shape == (8,)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"elements": []}, "`elements` is empty"),
        ({"elements": [1, "H"]}, r"`elements` = \[1, 'H'\] contains duplicates"),
        ({"elements": ["Qq"]}, "unknown element symbol 'Qq'"),
        ({"hidden_irreps": "8x1e"}, "`hidden_irreps` = '8x1e' has no 0e scalars"),
        ({"hidden_irreps": "8x0e+4x1o"}, "`hidden_irreps` = '8x0e\\+4x1o' has odd irreps but `parity` is False"),
        ({"num_blocks": 0}, "`num_blocks` is 0 but must be at least 1"),
        ({"l_max": -1}, "`l_max` is -1 but must be non-negative"),
        ({"radial_mlp": [8, 0]}, r"`radial_mlp` is \[8, 0\] but sizes must be positive"),
        ({"r_max": 0.0}, "`r_max` is 0.0 Å but must be positive"),
        ({"num_bessel": 0}, "`num_basis` is 0 but must be at least 1"),
        ({"avg_num_neighbors": -1.0}, "`avg_num_neighbors` is -1.0 but must be positive"),
        ({"polynomial_p": 1}, r"`p` is 1 but must be at least 2"),
    ],
)
def test_constructor_errors(overrides, message):
    config = {**PRESETS["small"], "elements": [1, 8], **overrides}
    with pytest.raises(ValueError, match=message):
        E0Network(**config)


def test_average_num_neighbors(periodic_system):
    positions, _, cell = periodic_system
    # Every pair within r_max counts twice, once per atom; the open-system pairs of the
    # periodic structure are a subset.
    periodic = average_num_neighbors([(positions, cell)], r_max=3.0)
    lengths = torch.cdist(positions, positions)
    open_pairs = ((lengths < 3.0).sum().item() - 3) / 3
    assert periodic > open_pairs > 0
    both = average_num_neighbors([(positions, cell), (positions, None)], r_max=3.0)
    assert both == pytest.approx((periodic + open_pairs) / 2)
    with pytest.raises(ValueError, match="`structures` holds no atoms"):
        average_num_neighbors([], r_max=3.0)


@pytest.mark.parametrize("module", [openmm_pqeq.nn, e0, interaction, radial, tensor_product], ids=lambda m: m.__name__)
def test_docstring_examples(module):
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)
    try:
        result = doctest.testmod(module, extraglobs={"torch": torch}, optionflags=doctest.ELLIPSIS)
    finally:
        torch.set_default_dtype(previous)
    assert result.failed == 0


def test_star_import():
    namespace: dict = {}
    exec("from openmm_pqeq.nn import *", namespace)
    assert set(openmm_pqeq.nn.__all__) <= set(namespace)
