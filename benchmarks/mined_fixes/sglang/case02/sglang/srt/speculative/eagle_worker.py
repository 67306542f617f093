import torch

from sglang.srt.managers.schedule_batch import ScheduleBatch


class EagleDraftInput:
    def __init__(self):
        self.verified_id: torch.Tensor = None
        self.positions: torch.Tensor = None
        self.topk_p: torch.Tensor = None
        self.topk_index: torch.Tensor = None
        self.hidden_states: torch.Tensor = None


class EAGLEWorker:
    def __init__(self, server_args, target_worker, draft_model_runner):
        self.target_worker = target_worker
        self.draft_model_runner = draft_model_runner
        self.topk = server_args.speculative_eagle_topk
        self.speculative_num_steps = server_args.speculative_num_steps
        self.device = server_args.device
        self.token_to_kv_pool_allocator = target_worker.token_to_kv_pool_allocator

    def forward_batch_generation(self, batch: ScheduleBatch):
        if batch.forward_mode.is_extend():
            return self.target_worker.forward_batch_generation(batch)
        spec_info = self.draft(batch)
        return self.verify(batch, spec_info)

    def _draft_preprocess_decode(self, batch: ScheduleBatch):
        # Parse args
        num_seqs = batch.batch_size()
        spec_info = batch.spec_info

        # Allocate cache locations
        out_cache_loc = self.token_to_kv_pool_allocator.alloc(
            num_seqs * self.topk * self.speculative_num_steps
        )

        batch.out_cache_loc = out_cache_loc
        batch.seq_lens_sum = torch.sum(batch.seq_lens).item()
        batch.return_hidden_states = False
        spec_info.positions = batch.seq_lens.repeat_interleave(self.topk, dim=0)

    def draft(self, batch: ScheduleBatch):
        self._draft_preprocess_decode(batch)
        spec_info = batch.spec_info
        assert isinstance(spec_info, EagleDraftInput)
        return self.draft_model_runner.forward(batch)

    def verify(self, batch: ScheduleBatch, spec_info):
        return self.target_worker.forward_batch_generation(batch, is_verify=True)
