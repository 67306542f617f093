# SPDX-License-Identifier: Apache-2.0
# Cut down to batching and device placement of the processor outputs.
from collections import UserDict
from typing import Union, cast

import torch

BatchedTensorInputs = dict[str, Union[torch.Tensor, list[torch.Tensor]]]


class MultiModalKwargs(UserDict[str, torch.Tensor]):
    """
    A dictionary that represents the keyword arguments to
    :meth:`~torch.nn.Module.forward`.
    """

    @staticmethod
    def batch(inputs_list: list["MultiModalKwargs"]) -> BatchedTensorInputs:
        # (benchmark cut: stacking of same-shaped items; image inputs are
        #  concatenated along the patch dimension here)
        keys = inputs_list[0].keys()
        return {
            k: torch.cat([item[k] for item in inputs_list], dim=0)
            for k in keys
        }

    @staticmethod
    def as_kwargs(
        batched_inputs: BatchedTensorInputs,
        *,
        device: torch.types.Device,
    ) -> BatchedTensorInputs:
        json_inputs = cast(dict[str, torch.Tensor], batched_inputs)

        json_mapped = {
            k: x.to(device, non_blocking=True)
            for k, x in json_inputs.items()
        }

        return cast(BatchedTensorInputs, json_mapped)
