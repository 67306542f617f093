from sglang.srt.layers.attention.hybrid_linear_attn_backend import (
    HybridLinearAttnBackend,
    Mamba2AttnBackend,
)
from sglang.srt.mem_cache.memory_pool import HybridReqToTokenPool, MambaPool
from sglang.srt.model_executor.forward_batch_info import ForwardBatch
from sglang.srt.model_executor.forward_context import (
    ForwardContext,
    set_forward_context,
)
from sglang.srt.server_args import ServerArgs


class ModelRunner:
    def __init__(self, server_args: ServerArgs, model, mamba_layers, gpu_id: int = 0):
        self.server_args = server_args
        self.device = server_args.device
        self.gpu_id = gpu_id
        self.is_draft_worker = False
        self.model = model
        self.init_memory_pool(mamba_layers)
        self.init_attention_backend()

    def init_memory_pool(self, mamba_layers):
        mamba_pool = MambaPool(
            size=512,
            num_layers=len(mamba_layers),
            conv_shape=(8192, 3),
            temporal_shape=(32, 128, 128),
            device=self.device,
        )
        self.req_to_token_pool = HybridReqToTokenPool(
            size=256,
            mamba_pool=mamba_pool,
            mamba_layers=mamba_layers,
            device=self.device,
        )
        self.token_to_kv_pool = None

    def init_attention_backend(self):
        self.attn_backend = HybridLinearAttnBackend(
            full_attn_backend=None,
            linear_attn_backend=Mamba2AttnBackend(self),
        )

    def forward_extend(self, forward_batch: ForwardBatch):
        self.attn_backend.init_forward_metadata(forward_batch)
        set_forward_context(ForwardContext(self.attn_backend))
        return self.model.forward(
            forward_batch.input_ids, forward_batch.positions, forward_batch
        )
