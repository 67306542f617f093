from sglang.srt.managers.schedule_batch import ScheduleBatch
from sglang.srt.speculative.eagle_info import EagleVerifyInput, EagleVerifyOutput


class EAGLEWorker:
    def __init__(self, target_worker, token_to_kv_pool_allocator, page_size: int):
        self.target_worker = target_worker
        self.token_to_kv_pool_allocator = token_to_kv_pool_allocator
        self.page_size = page_size

    def verify(self, batch: ScheduleBatch, spec_info: EagleVerifyInput):
        batch.spec_info = spec_info

        # Forward
        logits_output = self.target_worker.forward_batch_generation(batch)

        vocab_mask = None
        res: EagleVerifyOutput = spec_info.verify(
            batch,
            logits_output,
            self.token_to_kv_pool_allocator,
            self.page_size,
            vocab_mask,
        )
        return res
