# SPDX-License-Identifier: Apache-2.0
# Stand-in for the DeepGEMM wrappers (kernels are not part of this benchmark).
import torch


def is_deep_gemm_supported() -> bool:
    return True


def get_paged_mqa_logits_metadata(
    context_lens: torch.Tensor, block_size: int, num_sms: int
) -> torch.Tensor:
    raise NotImplementedError("DeepGEMM kernel stub")
