from typing import NamedTuple, Optional

import torch

from sglang.srt.speculative.dflash_utils import compute_position
from sglang.srt.utils import is_pin_memory_available


class PrefillPlacement(NamedTuple):
    cache_loc: torch.Tensor
    positions: torch.Tensor
    state_slot: Optional[torch.Tensor]
    final_pos: Optional[torch.Tensor]


class DSparkKVInjector:
    def __init__(self, model_runner, draft_model_runner, swa_ring_size: Optional[int]):
        self.model_runner = model_runner
        self.draft_model_runner = draft_model_runner
        self._swa_ring_size = swa_ring_size

    @property
    def swa_ring_size(self) -> Optional[int]:
        return self._swa_ring_size

    def place_prefill(self, batch) -> PrefillPlacement:
        """Where a prefill's target hidden goes in the draft pool. It reads
        scheduler-shared tables, so it runs before the target forward."""
        if batch.extend_lens is None or batch.prefix_lens is None:
            raise RuntimeError(
                "DSpark expected extend_lens / prefix_lens in extend mode, got None."
            )
        if batch.out_cache_loc is None:
            raise RuntimeError("DSpark prefill expected out_cache_loc, but got None.")

        device = self.model_runner.device
        pin_memory = is_pin_memory_available(device)
        ctx_lens = torch.tensor(
            batch.extend_lens, dtype=torch.int32, pin_memory=pin_memory
        ).to(device, non_blocking=True)
        draft_seq_lens = torch.tensor(
            batch.prefix_lens, dtype=torch.int32, pin_memory=pin_memory
        ).to(device, non_blocking=True)
        positions, _ = compute_position(
            self.model_runner.prefill_attention_backend_str,
            draft_seq_lens,
            ctx_lens,
            int(sum(batch.extend_lens)),
        )
        # A SWA ring is keyed by (draft req slot, position); thread the per-token
        # state_slot + the req's final position so the injector keeps only the
        # last SWA window (older prefill tokens share a ring slot and would race).
        state_slot = final_pos = None
        if self.swa_ring_size is not None:
            repeats = ctx_lens.to(torch.int64)
            state_slot = torch.repeat_interleave(
                batch.req_pool_indices.to(device=device, dtype=torch.int64),
                repeats,
            )
            final_pos = torch.repeat_interleave(
                (draft_seq_lens + ctx_lens - 1).to(torch.int64),
                repeats,
            )
        cache_loc = batch.out_cache_loc
        return PrefillPlacement(cache_loc, positions, state_slot, final_pos)
