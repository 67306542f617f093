from __future__ import annotations

import logging

import torch

from sglang.srt.model_executor.forward_batch_info import ForwardMode

# (benchmark cut: the draft-model worker, CUDA-graph runners, eagle_utils, grammar and logprob helpers)

logger = logging.getLogger(__name__)


class EAGLEWorker:
    # (benchmark cut: __init__, draft(), forward_batch_speculative_generation; the
    # target_worker is the TpModelWorker whose model_runner owns attn_backend)

    def verify(self, batch: ScheduleBatch, spec_info: EagleVerifyInput):
        spec_info.prepare_for_verify(batch, self.page_size)
        batch.return_hidden_states = False
        batch.forward_mode = (
            ForwardMode.TARGET_VERIFY
            if not batch.forward_mode.is_idle()
            else ForwardMode.IDLE
        )
        batch.spec_info = spec_info

        model_worker_batch = batch.get_model_worker_batch(
            seq_lens_cpu_cache=spec_info.seq_lens_cpu
        )
        assert model_worker_batch.capture_hidden_mode == spec_info.capture_hidden_mode

        # (benchmark cut: grammar tree D2H copies before the forward)

        # Forward
        logits_output, _, can_run_cuda_graph = (
            self.target_worker.forward_batch_generation(
                model_worker_batch, skip_sample=True
            )
        )

        vocab_mask = None
        # (benchmark cut: grammar vocab mask and NaN detection)
        spec_info.hidden_states = logits_output.hidden_states
        res: EagleVerifyOutput = spec_info.verify(
            batch,
            logits_output,
            self.token_to_kv_pool_allocator,
            self.page_size,
            vocab_mask,
        )

        # Post process based on verified outputs.
        # Pick indices that we care (accepted)
        logits_output.next_token_logits = logits_output.next_token_logits[
            res.accepted_indices
        ]
        logits_output.hidden_states = logits_output.hidden_states[res.accepted_indices]

        # QQ: can be optimized
        if self.target_worker.model_runner.is_hybrid_gdn:
            # res.draft_input.accept_length is on GPU but may be empty for last verify?
            accepted_length = (
                torch.tensor(
                    res.accept_length_per_req_cpu,
                    device=logits_output.hidden_states.device,
                    dtype=torch.int32,
                )
                + 1
            )
            self.target_worker.model_runner.attn_backend.update_mamba_state_after_mtp_verify(
                accepted_length, self.target_worker.model_runner.model
            )

        # (benchmark cut: add_logprob_values)

        # Prepare the batch for the next draft forwards.
        batch.forward_mode = (
            ForwardMode.DECODE if not batch.forward_mode.is_idle() else ForwardMode.IDLE
        )
        batch.spec_info = res.draft_input

        return logits_output, res, model_worker_batch, can_run_cuda_graph
