import torch

from sglang.srt.lora.utils import LoRABatchInfo


class BaseLoRABackend:
    def __init__(self, max_loras_per_batch: int, device: torch.device):
        self.max_loras_per_batch = max_loras_per_batch
        self.device = device
        self.batch_info: LoRABatchInfo = None

    def init_cuda_graph_batch_info(self, max_bs_in_cuda_graph: int, num_tokens_per_bs: int):
        with torch.device("cuda"):
            self.cuda_graph_batch_info = LoRABatchInfo(
                bs=max_bs_in_cuda_graph,
                use_cuda_graph=True,
                num_segments=None,
                seg_indptr=torch.zeros(max_bs_in_cuda_graph + 1, dtype=torch.int32),
                weight_indices=torch.zeros(max_bs_in_cuda_graph, dtype=torch.int32),
                lora_ranks=torch.zeros(self.max_loras_per_batch, dtype=torch.int64),
                scalings=torch.zeros(self.max_loras_per_batch, dtype=torch.float),
            )

    def prepare_lora_batch(self, forward_batch, weight_indices, lora_ranks, scalings, use_cuda_graph: bool):
        # lora_ranks / weight_indices are uploaded to the device once per batch
        bs = forward_batch.batch_size
        batch_info = self.cuda_graph_batch_info
        batch_info.bs = bs
        batch_info.num_segments = bs
        batch_info.weight_indices[:bs].copy_(weight_indices, non_blocking=True)
        batch_info.lora_ranks[: len(lora_ranks)].copy_(lora_ranks, non_blocking=True)
        batch_info.scalings[: len(scalings)].copy_(scalings, non_blocking=True)
        self.batch_info = batch_info
