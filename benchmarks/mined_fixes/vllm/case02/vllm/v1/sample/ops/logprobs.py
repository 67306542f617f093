import torch
import triton
import triton.language as tl


@triton.jit
def _token_logprobs_kernel(logits_ptr, token_ids_ptr, out_ptr, vocab_size,
                           num_tokens, BLOCK: tl.constexpr):
    pass


def compute_token_logprobs(logits: torch.Tensor,
                           token_ids: torch.Tensor) -> torch.Tensor:
    batch_size, num_tokens = token_ids.shape
    out = torch.empty(batch_size, num_tokens, dtype=torch.float32,
                      device=logits.device)
    _token_logprobs_kernel[(batch_size, )](logits, token_ids, out,
                                           logits.shape[-1], num_tokens,
                                           BLOCK=1024)
    return out
