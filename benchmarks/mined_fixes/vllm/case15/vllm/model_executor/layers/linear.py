from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.parameter import Parameter


class UnquantizedLinearMethod:

    def create_weights(self, layer: nn.Module, input_size: int,
                       output_size: int, params_dtype: torch.dtype) -> None:
        weight = Parameter(torch.empty(output_size, input_size,
                                       dtype=params_dtype),
                           requires_grad=False)
        layer.register_parameter("weight", weight)

    def apply(self,
              layer: nn.Module,
              x: torch.Tensor,
              bias: Optional[torch.Tensor] = None) -> torch.Tensor:
        return F.linear(x, layer.weight, bias)


class LinearBase(nn.Module):

    def __init__(self, input_size: int, output_size: int,
                 skip_bias_add: bool = False,
                 params_dtype: Optional[torch.dtype] = None,
                 quant_config=None, prefix: str = "",
                 return_bias: bool = True, disable_tp: bool = False):
        super().__init__()
        self.input_size = input_size
        self.output_size = output_size
        self.skip_bias_add = skip_bias_add
        if params_dtype is None:
            params_dtype = torch.get_default_dtype()
        self.params_dtype = params_dtype
        if quant_config is None:
            self.quant_method = UnquantizedLinearMethod()
        else:
            self.quant_method = quant_config.get_quant_method(self,
                                                              prefix=prefix)
        self.return_bias = return_bias
        self.disable_tp = disable_tp


class ReplicatedLinear(LinearBase):

    def __init__(self, input_size: int, output_size: int, bias: bool = True,
                 skip_bias_add: bool = False,
                 params_dtype: Optional[torch.dtype] = None,
                 quant_config=None, prefix: str = "",
                 return_bias: bool = True, disable_tp: bool = False):
        super().__init__(input_size, output_size, skip_bias_add, params_dtype,
                         quant_config, prefix=prefix, return_bias=return_bias,
                         disable_tp=disable_tp)
        self.quant_method.create_weights(self, self.input_size,
                                         self.output_size, self.params_dtype)
        if bias:
            self.bias = Parameter(
                torch.empty(self.output_size, dtype=self.params_dtype))
        else:
            self.register_parameter("bias", None)

    def forward(self, x: torch.Tensor):
        bias = self.bias if not self.skip_bias_add else None
        assert self.quant_method is not None
        output = self.quant_method.apply(self, x, bias)
        output_bias = self.bias if self.skip_bias_add else None
        if not self.return_bias:
            return output
        return output, output_bias


class ColumnParallelLinear(ReplicatedLinear):
    pass


class QKVParallelLinear(ColumnParallelLinear):

    def __init__(self, hidden_size: int, head_size: int, total_num_heads: int,
                 total_num_kv_heads: Optional[int] = None, bias: bool = True,
                 quant_config=None, prefix: str = "",
                 disable_tp: bool = False):
        total_num_kv_heads = total_num_kv_heads or total_num_heads
        output_size = (total_num_heads + 2 * total_num_kv_heads) * head_size
        super().__init__(hidden_size, output_size, bias=bias,
                         quant_config=quant_config, prefix=prefix,
                         disable_tp=disable_tp)


class RowParallelLinear(ReplicatedLinear):
    pass
