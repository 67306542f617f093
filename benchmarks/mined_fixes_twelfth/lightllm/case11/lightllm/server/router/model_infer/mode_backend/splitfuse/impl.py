import torch
from lightllm.server.router.model_infer.mode_backend.base_backend import ModeBackend
from lightllm.utils.infer_utils import calculate_time, mark_start, mark_end
from lightllm.server.router.model_infer.infer_batch import InferBatch, InferReq, InferSamplingParams
from .pre_process import splitfuse_prepare_decode_inputs
from lightllm.server.router.model_infer.mode_backend.continues_batch.post_process import sample


class SplitFuseBackend(ModeBackend):
    def __init__(self) -> None:
        super().__init__()

    @calculate_time(show=False, min_cost_ms=300)
    def prefill_batch(self, batch_id):
        """
        splitfuse 模式下prefill 没有实际操作。
        """
        return {}

    @calculate_time(show=True, min_cost_ms=200)
    def decode_batch(self, batch_id):
        output_dict = {}
        batch: InferBatch = self.cache.pop(batch_id)
        kwargs, decode_reqs, prefill_reqs = splitfuse_prepare_decode_inputs(
            batch, self.splitfuse_block_size, self.radix_cache
        )
        decode_req_num = len(decode_reqs)
        all_reqs = decode_reqs
        all_reqs.extend(prefill_reqs)

        logits = self.model.splitfuse_forward(**kwargs)
        next_token_ids, next_token_probs = sample(logits, all_reqs, self.eos_id)
        next_token_ids = next_token_ids.detach().cpu().numpy()
        # (benchmark cut: per-request bookkeeping of decode and split-prefill outputs)
        return output_dict
