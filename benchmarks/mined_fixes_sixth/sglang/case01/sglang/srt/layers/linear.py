# (benchmark cut: tensor-parallel linear layers reduced to single-GPU stand-ins returning (output, bias))
import torch
from torch import nn


class QKVParallelLinear(nn.Module):
    def __init__(
        self,
        hidden_size,
        head_size,
        total_num_heads,
        total_num_kv_heads=None,
        bias=True,
        quant_config=None,
        tp_rank=0,
        tp_size=1,
        prefix="",
    ):
        super().__init__()
        total_num_kv_heads = total_num_kv_heads or total_num_heads
        out = (total_num_heads + 2 * total_num_kv_heads) * head_size
        self.linear = nn.Linear(hidden_size, out, bias=bias)

    def forward(self, x):
        return self.linear(x), None


class RowParallelLinear(nn.Module):
    def __init__(
        self,
        input_size,
        output_size,
        bias=True,
        quant_config=None,
        tp_rank=0,
        tp_size=1,
        prefix="",
        use_dp_attention_reduce=False,
    ):
        super().__init__()
        self.linear = nn.Linear(input_size, output_size, bias=bias)

    def forward(self, x):
        return self.linear(x), None


class ReplicatedLinear(nn.Module):
    def __init__(self, input_size, output_size, bias=True, prefix=""):
        super().__init__()
        self.linear = nn.Linear(input_size, output_size, bias=bias)

    def forward(self, x):
        return self.linear(x), None
