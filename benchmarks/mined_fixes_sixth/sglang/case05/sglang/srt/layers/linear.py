# (benchmark cut: tensor-parallel linear layers reduced to single-GPU stand-ins)
import torch
from torch import nn


class _UnquantizedMethod:
    def apply(self, layer, x, bias=None):
        return torch.nn.functional.linear(x, layer.weight, bias)


class ColumnParallelLinear(nn.Module):
    def __init__(self, input_size, output_size, bias=True, gather_output=False, skip_bias_add=False):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(output_size, input_size))
        self.bias = nn.Parameter(torch.empty(output_size)) if bias else None
        self.gather_output = gather_output
        self.skip_bias_add = skip_bias_add
        self.output_partition_sizes = [output_size]
        self.quant_method = _UnquantizedMethod()


class QKVParallelLinear(ColumnParallelLinear):
    def __init__(self, hidden_size, head_size, total_num_heads, total_num_kv_heads=None, bias=True):
        total_num_kv_heads = total_num_kv_heads or total_num_heads
        super().__init__(
            hidden_size, (total_num_heads + 2 * total_num_kv_heads) * head_size, bias=bias
        )
