# (benchmark cut: other model configs, model_mapping, get_model_config, get_model_config_from_hf and __all__)
from .moe.moe import BalancingLossConfig, MoE, MoEConfig, MoEModelOutputs, ZLossConfig
