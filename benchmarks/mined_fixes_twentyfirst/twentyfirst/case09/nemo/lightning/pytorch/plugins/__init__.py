from nemo.lightning.pytorch.plugins.data_sampler import MegatronDataSampler
from nemo.lightning.pytorch.plugins.mixed_precision import MegatronMixedPrecision

__all__ = [
    "MegatronDataSampler",
    "MegatronMixedPrecision",
]
