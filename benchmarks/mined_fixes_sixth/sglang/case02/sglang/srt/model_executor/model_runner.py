import torch

from sglang.srt.layers.attention.attention_registry import ATTENTION_BACKENDS
from sglang.srt.mem_cache.memory_pool import HybridReqToTokenPool, ReqToTokenPool

# (benchmark cut: distributed init, model loading, KV pools, CUDA graphs and forward)


class ModelRunner:
    """ModelRunner runs the forward passes of the models."""

    def __init__(
        self,
        model_config,
        mem_fraction_static: float,
        gpu_id: int,
        tp_rank: int,
        tp_size: int,
        server_args,
        is_draft_worker: bool = False,
    ):
        # Parse args
        self.model_config = model_config
        self.mem_fraction_static = mem_fraction_static
        self.device = server_args.device
        self.gpu_id = gpu_id
        self.tp_rank = tp_rank
        self.tp_size = tp_size
        self.server_args = server_args
        self.is_draft_worker = is_draft_worker
        # (benchmark cut: the rest of __init__ / initialize; model loading sets self.model)
        self.model = None

    @property
    def is_hybrid_gdn(self):
        return self.model_config.hf_config.architectures[0] in [
            "Qwen3NextForCausalLM",
            "Qwen3NextForCausalLMMTP",
        ]

    def init_memory_pool(
        self,
        total_gpu_memory: int,
        max_num_reqs=None,
        max_total_tokens=None,
    ):
        # (benchmark cut: KV cache dtype, token budget and max_num_reqs computation)
        extra_max_context_len = 4
        if self.server_args.speculative_num_draft_tokens is not None:
            extra_max_context_len += self.server_args.speculative_num_draft_tokens

        if not self.is_draft_worker:
            if self.is_hybrid_gdn:
                config = self.model_config.hf_config
                (
                    conv_state_shape,
                    temporal_state_shape,
                    conv_dtype,
                    ssm_dtype,
                    mamba_layers,
                ) = config.hybrid_gdn_params
                self.req_to_token_pool = HybridReqToTokenPool(
                    size=max_num_reqs,
                    max_context_len=self.model_config.context_len
                    + extra_max_context_len,
                    device=self.device,
                    enable_memory_saver=self.server_args.enable_memory_saver,
                    conv_state_shape=conv_state_shape,
                    temporal_state_shape=temporal_state_shape,
                    conv_dtype=conv_dtype,
                    ssm_dtype=ssm_dtype,
                    mamba_layers=mamba_layers,
                    speculative_num_draft_tokens=self.server_args.speculative_num_draft_tokens,
                )
            else:
                self.req_to_token_pool = ReqToTokenPool(
                    size=max_num_reqs,
                    max_context_len=self.model_config.context_len
                    + extra_max_context_len,
                    device=self.device,
                    enable_memory_saver=self.server_args.enable_memory_saver,
                )
        else:
            # Draft worker shares req_to_token_pool with the target worker.
            assert self.is_draft_worker

        # (benchmark cut: token_to_kv_pool and its allocator)

    def init_attention_backend(self):
        """Init attention kernel backend."""
        # (benchmark cut: TBO / multi-backend wrappers)
        self.attn_backend = self._get_attention_backend()

    def _get_attention_backend(self):
        # (benchmark cut: prefill/decode backend split)
        return self._get_attention_backend_from_str(self.server_args.attention_backend)

    def _get_attention_backend_from_str(self, backend_str: str):
        if backend_str not in ATTENTION_BACKENDS:
            raise ValueError(f"Invalid attention backend: {backend_str}")
        return ATTENTION_BACKENDS[backend_str](self)

    def forward(self, forward_batch, skip_attn_backend_init: bool = False):
        # (benchmark cut: CUDA-graph replay and the model call)
        if not skip_attn_backend_init:
            self.attn_backend.init_forward_metadata(forward_batch)
