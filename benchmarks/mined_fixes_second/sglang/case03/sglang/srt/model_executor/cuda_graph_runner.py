import torch

from sglang.srt.model_executor.forward_batch_info import ForwardBatch


class CudaGraphRunner:
    def __init__(self, model_runner):
        self.model_runner = model_runner
        self.graphs = {}

    def replay_prepare(self, forward_batch: ForwardBatch):
        # Attention metadata is refreshed out of graph before graph.replay().
        self.model_runner.attn_backend.init_forward_metadata_out_graph(
            forward_batch, in_capture=False
        )

    def replay(self, forward_batch: ForwardBatch):
        self.replay_prepare(forward_batch)
        self.graphs[forward_batch.batch_size].replay()
