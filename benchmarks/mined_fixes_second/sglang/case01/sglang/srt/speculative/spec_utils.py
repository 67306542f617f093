import torch


def top_k_renorm_prob(probs: torch.Tensor, top_ks: torch.Tensor) -> torch.Tensor:
    # stand-in for the sgl_kernel op
    return probs


def top_p_renorm_prob(probs: torch.Tensor, top_ps: torch.Tensor) -> torch.Tensor:
    # stand-in for the sgl_kernel op
    return probs


def tree_speculative_sampling_target_only(**kwargs) -> None:
    # stand-in for the sgl_kernel op
    return None
