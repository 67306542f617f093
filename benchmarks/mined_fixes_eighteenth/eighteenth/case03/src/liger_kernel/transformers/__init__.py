# (benchmark cut: cross_entropy, geglu, layer_norm, rms_norm, rope, swiglu re-exports and the other apply_liger_kernel_to_* functions)
from liger_kernel.transformers.auto_model import (  # noqa: F401
    AutoLigerKernelForCausalLM,
)
from liger_kernel.transformers.fused_linear_cross_entropy import (  # noqa: F401
    LigerFusedLinearCrossEntropyLoss,
)
from liger_kernel.transformers.monkey_patch import (  # noqa: F401
    apply_liger_kernel_to_llama,
)
