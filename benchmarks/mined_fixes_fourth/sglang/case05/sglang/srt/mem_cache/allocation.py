from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sglang.srt.managers.schedule_batch import ScheduleBatch


def alloc_for_decode(batch: ScheduleBatch, token_per_req: int):
    # Reduced: page_size == 1, no eviction; the real function also writes the
    # new locations into req_to_token with a Triton kernel.
    bs = batch.batch_size()
    return batch.token_to_kv_pool_allocator.alloc(bs * token_per_req)
