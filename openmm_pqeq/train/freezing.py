"""Which parameters of a model train: the ``freeze`` option of training and finetuning.

Options (``training.freeze`` in a training YAML, ``freeze=`` of
:func:`~openmm_pqeq.train.finetune`, ``--freeze`` of ``openmm-pqeq finetune``):

- ``"none"``: every E0 parameter is trained;
- ``"readout"``: only the last two linear layers: the readout (node scalars → energy) and the
  linear maps that make the last node features (``linear_down`` and ``self_connection`` of
  the last interaction block, whose sum is one linear layer on [messages, features]);
- a list of ``fnmatch`` patterns of parameter names to train (e.g. ``["e0.readout.*"]``).

PQEq parameters freed by the model's ``pqeq.trainable`` configuration always train with E0;
D3 has no parameters.  The per-species scale and shift of E0 are buffers, never trained.
"""

from __future__ import annotations

import fnmatch
from typing import List, Sequence, Tuple, Union

import torch

FREEZE_OPTIONS = ("none", "readout")


def readout_patterns(model: torch.nn.Module) -> List[str]:
    """Parameter-name patterns of the last two linear layers of ``model.e0``."""
    last = len(model.e0.blocks) - 1
    return ["e0.readout.*", f"e0.blocks.{last}.linear_down.*", f"e0.blocks.{last}.self_connection.*"]


def select_trainable(model: torch.nn.Module, freeze: Union[str, Sequence[str]] = "none"
                     ) -> List[Tuple[str, torch.nn.Parameter]]:
    """Set ``requires_grad`` by ``freeze`` (module docstring) and return the trainable
    ``(name, parameter)`` pairs: E0 parameters, and the PQEq parameters freed by the model's
    ``pqeq.trainable`` configuration (D3 has none)."""
    if model.e0 is None:
        raise ValueError("the model has no E0 network: nothing to train")
    if isinstance(freeze, str):
        if freeze not in FREEZE_OPTIONS:
            raise ValueError(f"`freeze` is {freeze!r}; options are {', '.join(map(repr, FREEZE_OPTIONS))} "
                             "or a list of parameter-name patterns to train")
        patterns = ["e0.*"] if freeze == "none" else readout_patterns(model)
    else:
        patterns = list(freeze)
    trainable = []
    for name, param in model.named_parameters():
        # PQEq parameters freed in the model configuration (``pqeq.trainable``) train with E0
        keep = (name.startswith("e0.") and any(fnmatch.fnmatchcase(name, p) for p in patterns)) or \
            name.startswith("pqeq.trainable_parameters.")
        param.requires_grad_(keep)
        if keep:
            trainable.append((name, param))
    if not trainable:
        names = [n for n, _ in model.named_parameters()][:8]
        raise ValueError(f"`freeze` = {freeze!r} leaves no parameter to train (parameters: {names} ...)")
    return trainable
