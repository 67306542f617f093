import torch

from sglang.srt.managers.tp_worker import TpModelWorker
from sglang.srt.speculative.dflash_utils import compute_position, is_unified_kv_triton


class DSparkWorkerV2:
    def __init__(self, server_args, target_worker: TpModelWorker, draft_model_runner, kv_injector):
        self.server_args = server_args
        self.target_worker = target_worker
        self.model_runner = target_worker.model_runner
        self.draft_model_runner = draft_model_runner
        self._kv_injector = kv_injector
        self.device = server_args.device

    def forward_batch_generation(self, batch, on_publish=None):
        if batch.forward_mode.is_extend():
            return self._forward_prefill(batch, on_publish=on_publish)
        return self._forward_decode(batch, on_publish=on_publish)

    def _forward_decode(self, batch, on_publish=None):
        raise NotImplementedError

    def _forward_prefill(self, batch, on_publish=None):
        batch_output = self.target_worker.forward_batch_generation(batch)
        logits_output = batch_output.logits_output
        next_token_ids = batch_output.next_token_ids
        batch_output.new_seq_lens = batch.seq_lens
        if on_publish is not None:
            on_publish(batch_output.new_seq_lens)

        if logits_output is None or logits_output.hidden_states is None:
            raise RuntimeError(
                "DSpark requires target aux hidden capture for prefill, but got None."
            )
        if batch.extend_lens is None or batch.prefix_lens is None:
            raise RuntimeError(
                "DSpark expected extend_lens / prefix_lens in extend mode, got None."
            )

        # Must inject before prefill returns: the scheduler may update radix
        # afterward, invalidating out_cache_loc.
        device = next_token_ids.device
        ctx_lens = torch.tensor(batch.extend_lens, dtype=torch.int32, device=device)
        draft_seq_lens = torch.tensor(
            batch.prefix_lens, dtype=torch.int32, device=device
        )
        positions, _ = compute_position(
            self.model_runner.prefill_attention_backend_str,
            draft_seq_lens,
            ctx_lens,
            int(sum(batch.extend_lens)),
        )
        # unified_kv injects into the SWA ring keyed by (draft req slot, position);
        # thread the per-token state_slot + the req's final position so the
        # injector keeps only the last SWA window.
        state_slot = final_pos = None
        if is_unified_kv_triton():
            repeats = ctx_lens.to(torch.int64)
            state_slot = torch.repeat_interleave(
                batch.req_pool_indices.to(device=device, dtype=torch.int64), repeats
            )
            final_pos = torch.repeat_interleave(
                (draft_seq_lens + ctx_lens - 1).to(torch.int64), repeats
            )
        self._kv_injector.inject_target_hidden(
            target_hidden=logits_output.hidden_states,
            cache_loc=batch.out_cache_loc,
            positions=positions,
            state_slot=state_slot,
            final_pos=final_pos,
        )
        # Avoid copying large hidden-state buffers to CPU in overlap scheduling.
        logits_output.hidden_states = None
        return batch_output
