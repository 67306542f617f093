# SPDX-License-Identifier: Apache-2.0
"""A layer that samples the next tokens from the model's outputs."""
# Cut down: the V0 sampler is dropped (VLLM_USE_V1 is set).
import torch

VLLM_USE_V1 = True


def get_sampler() -> torch.nn.Module:
    if VLLM_USE_V1:
        # Lazy import: the v1 package isn't distributed
        from vllm.v1.sample.sampler import Sampler as V1Sampler
        return V1Sampler()
    raise NotImplementedError("V0 sampler is not part of this benchmark")
