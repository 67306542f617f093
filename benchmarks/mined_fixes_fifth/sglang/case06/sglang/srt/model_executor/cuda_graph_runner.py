from __future__ import annotations

import bisect
from typing import TYPE_CHECKING

import torch

from sglang.srt.model_executor.forward_batch_info import ForwardBatch, ForwardMode
from sglang.srt.model_executor.input_buffers import GraphInputBuffers

if TYPE_CHECKING:
    from sglang.srt.model_executor.model_runner import ModelRunner


def get_batch_sizes_to_capture(model_runner: ModelRunner, num_tokens_per_bs=1):
    capture_bs = [1, 2, 4, 8] + list(range(16, 257, 8))
    capture_bs = [
        bs for bs in capture_bs if bs <= model_runner.server_args.cuda_graph_max_bs
    ]
    compile_bs = []
    return capture_bs, compile_bs


class CudaGraphRunner:
    """A CudaGraphRunner runs the forward pass of a model with cuda graph and torch.compile."""

    def __init__(self, model_runner: ModelRunner):
        # Parse args
        self.model_runner = model_runner
        self.device = model_runner.device
        self.graphs = {}
        self.output_buffers = {}
        self.disable_padding = model_runner.server_args.disable_cuda_graph_padding

        self.capture_forward_mode = ForwardMode.DECODE
        self.num_tokens_per_bs = 1
        if model_runner.spec_algorithm.is_eagle():
            self.capture_forward_mode = ForwardMode.TARGET_VERIFY
            self.num_tokens_per_bs = (
                self.model_runner.server_args.speculative_num_draft_tokens
            )

        # Batch sizes to capture
        self.capture_bs, self.compile_bs = get_batch_sizes_to_capture(
            model_runner, self.num_tokens_per_bs
        )

        # Attention backend
        self.max_bs = max(self.capture_bs)
        self.max_num_token = self.max_bs * self.num_tokens_per_bs
        self.model_runner.attn_backend.init_cuda_graph_state(
            self.max_bs, self.max_num_token
        )

        self.seq_len_fill_value = (
            self.model_runner.attn_backend.get_cuda_graph_seq_len_fill_value()
        )

        self.buffers = GraphInputBuffers.create(
            device=self.device,
            max_bs=self.max_bs,
            max_num_token=self.max_num_token,
            seq_len_fill_value=self.seq_len_fill_value,
            cache_loc_dtype=torch.int64,
        )

        # Capture
        self.capture()

    def capture(self) -> None:
        for bs in reversed(self.capture_bs):
            graph, output_buffers = self.capture_one_batch_size(bs)
            self.graphs[bs] = graph
            self.output_buffers[bs] = output_buffers

    def capture_one_batch_size(self, bs: int):
        buffers = self.buffers
        num_tokens = bs * self.num_tokens_per_bs

        # Graph inputs
        req_pool_indices = buffers.req_pool_indices[:bs]
        seq_lens = buffers.seq_lens[:bs]

        # Attention backend
        self.model_runner.attn_backend.init_forward_metadata_capture_cuda_graph(
            bs,
            num_tokens,
            req_pool_indices,
            seq_lens,
            None,
            self.capture_forward_mode,
            None,
        )

        graph = torch.cuda.CUDAGraph()
        # torch.cuda.graph(graph) capture of the model forward (cut)
        return graph, None

    def replay_prepare(
        self,
        forward_batch: ForwardBatch,
    ):
        buffers = self.buffers

        raw_bs = forward_batch.batch_size
        raw_num_token = raw_bs * self.num_tokens_per_bs

        # Pad
        index = bisect.bisect_left(self.capture_bs, raw_bs)
        bs = self.capture_bs[index]

        seq_lens_cpu = buffers.populate_from_forward_batch(
            forward_batch=forward_batch,
            raw_bs=raw_bs,
            raw_num_token=raw_num_token,
            bs=bs,
            seq_len_fill_value=self.seq_len_fill_value,
        )
        # Attention backend
        attn_backend = self.model_runner.attn_backend
        attn_backend.init_forward_metadata_replay_cuda_graph(
            bs,
            buffers.req_pool_indices[:bs],
            buffers.seq_lens[:bs],
            forward_batch.seq_lens_sum + (bs - raw_bs) * self.seq_len_fill_value,
            None,
            self.capture_forward_mode,
            forward_batch.spec_info,
            seq_lens_cpu=seq_lens_cpu,
        )

        # Store fields
        self.raw_bs = raw_bs
        self.raw_num_token = raw_num_token
        self.bs = bs

    def replay(
        self,
        forward_batch: ForwardBatch,
        skip_attn_backend_init: bool = False,
    ):
        if not skip_attn_backend_init:
            self.replay_prepare(forward_batch)

        # Replay
        graph_key = self.bs
        self.graphs[graph_key].replay()
        output = self.output_buffers[graph_key]
        return output
