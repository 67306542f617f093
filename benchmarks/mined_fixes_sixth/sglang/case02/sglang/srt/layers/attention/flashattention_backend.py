# (benchmark cut: the FA3 full-attention backend; a stand-in that only builds no metadata)
from sglang.srt.layers.attention.base_attn_backend import AttentionBackend


class FlashAttentionBackend(AttentionBackend):
    def __init__(self, model_runner):
        super().__init__()
        self.device = model_runner.device

    def init_forward_metadata(self, forward_batch):
        pass
