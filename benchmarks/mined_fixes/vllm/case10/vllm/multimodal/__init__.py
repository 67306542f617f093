from vllm.multimodal.inputs import MultiModalFieldConfig, MultiModalKwargs

__all__ = ["MultiModalFieldConfig", "MultiModalKwargs"]
