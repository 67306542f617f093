from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sglang.srt.mem_cache.common import release_kv_cache

if TYPE_CHECKING:
    from sglang.srt.managers.schedule_batch import Req, ScheduleBatch
    from sglang.srt.managers.scheduler import Scheduler

logger = logging.getLogger(__name__)


class SchedulerOutputProcessorMixin:
    """
    This class implements the output processing logic for Scheduler.
    We put them into a separate file to make the `scheduler.py` shorter.
    """

    # (benchmark cut: process_batch_result_prefill and the other result processors)

    def process_batch_result_decode(
        self: Scheduler,
        batch: ScheduleBatch,
        result,
    ):
        if result.copy_done is not None:
            result.copy_done.synchronize()

        # (benchmark cut: next_token_ids / logprob conversion on the host copies,
        #  metrics, free_group_begin)
        next_token_ids = result.next_token_ids.tolist()

        # Check finish condition
        for i, (req, next_token_id) in enumerate(zip(batch.reqs, next_token_ids)):
            req: Req

            if self.enable_overlap and (req.finished() or req.is_retracted):
                continue

            new_accepted_len = 1
            req.output_ids.append(next_token_id)

            # (benchmark cut: _mamba_prefix_cache_update, time stats)

            req.check_finished(new_accepted_len)

            if req.finished():
                # (benchmark cut: multimodal feature release, routed experts,
                #  decode KV offload)
                release_kv_cache(req, self.tree_cache)

            # (benchmark cut: logprobs, hidden states, grammar)

        # (benchmark cut: stream_output, free_group_end)
