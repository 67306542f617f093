from __future__ import annotations

from typing import Optional, Tuple

from sglang.srt.model_executor.forward_batch_info import ForwardBatch


class AttentionBackend:
    def get_cuda_graph_seq_len_fill_value(self):
        return 1

    def init_forward_metadata(self, forward_batch: ForwardBatch):
        pass


class ModelRunner:
    def __init__(self, model, server_args, gpu_id: int = 0):
        self.model = model
        self.server_args = server_args
        self.device = server_args.device
        self.gpu_id = gpu_id
        self.graph_runner = None
        self.attn_backend = AttentionBackend()

    def forward(
        self,
        forward_batch: ForwardBatch,
        skip_attn_backend_init: bool = False,
        pp_proxy_tensors=None,
    ):
        output = self._forward_raw(
            forward_batch,
            skip_attn_backend_init,
            pp_proxy_tensors,
        )
        return output

    def _forward_raw(
        self,
        forward_batch: ForwardBatch,
        skip_attn_backend_init: bool,
        pp_proxy_tensors,
    ) -> Tuple[object, bool]:
        can_run_graph = bool(
            forward_batch.forward_mode.is_decode()
            and self.graph_runner
            and self.graph_runner.can_run(forward_batch)
        )

        if can_run_graph:
            ret = self.graph_runner.replay(
                forward_batch,
                skip_attn_backend_init=skip_attn_backend_init,
                pp_proxy_tensors=pp_proxy_tensors,
            )
            return ret, can_run_graph

        # For MLP sync
        if forward_batch.global_num_tokens_cpu is not None:
            forward_batch.prepare_mlp_sync_batch(self)

        if forward_batch.forward_mode.is_decode():
            ret = self.forward_decode(forward_batch)
        elif forward_batch.forward_mode.is_extend():
            ret = self.forward_extend(forward_batch)
        else:
            raise ValueError(f"Invalid forward mode: {forward_batch.forward_mode}")

        return ret, can_run_graph

    def forward_decode(self, forward_batch: ForwardBatch):
        self.attn_backend.init_forward_metadata(forward_batch)
        return self.model.forward(
            forward_batch.input_ids, forward_batch.positions, forward_batch
        )

    def forward_extend(self, forward_batch: ForwardBatch):
        self.attn_backend.init_forward_metadata(forward_batch)
        return self.model.forward(
            forward_batch.input_ids, forward_batch.positions, forward_batch
        )
