from torchao.prototype.moe_training.scaled_grouped_mm import (
    _quantize_then_scaled_grouped_mm,
)

__all__ = ["_quantize_then_scaled_grouped_mm"]
