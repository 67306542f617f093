from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Optional

import torch

from sglang.srt.model_executor.forward_batch_info import ForwardBatch

if TYPE_CHECKING:
    from sglang.srt.layers.radix_attention import RadixAttention
    from sglang.srt.model_executor.model_runner import ModelRunner

logger = logging.getLogger(__name__)

fp8_dtype = torch.float8_e4m3fnuz

# Use fp8 prefill only on gfx95
_use_fp8_prefill_attn = True


def mla_prefill_ps_asm_fwd(*args):
    # Stand-in for the aiter ASM kernel launch.
    pass


def mla_reduce_v1(*args):
    # Stand-in for the aiter reduce kernel launch.
    pass


class ForwardMetadata:
    def __init__(
        self,
        kv_indptr: torch.Tensor,
        kv_indices: torch.Tensor,
        qo_indptr: torch.Tensor,
        kv_last_page_len: torch.Tensor,
        max_q_len: int,
        max_kv_len: Optional[int],
        work_metadata: Optional[torch.Tensor] = None,
        work_info_set: Optional[torch.Tensor] = None,
        work_indptr: Optional[torch.Tensor] = None,
        reduce_indptr: Optional[torch.Tensor] = None,
        reduce_final_map: Optional[torch.Tensor] = None,
        reduce_partial_map: Optional[torch.Tensor] = None,
        fp8_prefill_kv_indices: Optional[torch.Tensor] = None,
    ):
        self.kv_indptr = kv_indptr
        self.kv_indices = kv_indices
        self.qo_indptr = qo_indptr
        self.kv_last_page_len = kv_last_page_len
        self.max_q_len = max_q_len
        self.max_kv_len = max_kv_len
        self.work_metadata = work_metadata
        self.work_info_set = work_info_set
        self.work_indptr = work_indptr
        self.reduce_indptr = reduce_indptr
        self.reduce_final_map = reduce_final_map
        self.reduce_partial_map = reduce_partial_map
        self.fp8_prefill_kv_indices = fp8_prefill_kv_indices


class AiterAttnBackend:
    def __init__(self, model_runner: ModelRunner):
        self.device = model_runner.device
        self.use_mla = True
        self.num_head = 16
        self.num_kv_head = 1
        self.input_dtype = torch.bfloat16
        self.kv_cache_dtype = torch.bfloat16
        self.max_bs = model_runner.server_args.max_running_requests
        self.kv_last_page_len = torch.ones(
            (self.max_bs,), dtype=torch.int32, device=self.device
        )
        self.forward_metadata: ForwardMetadata = None

    def make_mla_prefill_ps_meta_data_buffer(self, bs, max_q_len, qlen_granularity):
        # Device work buffers for the persistent prefill kernel (sizes cut).
        def buf(n):
            return torch.empty((n,), dtype=torch.int32, device=self.device)

        return buf(64), buf(bs + 1), buf(1024), buf(bs + 1), buf(bs), buf(1024)

    def init_forward_metadata(self, forward_batch: ForwardBatch):
        bs = forward_batch.batch_size
        # Decode / verify / draft-extend / non-MLA branches are cut.
        qo_indptr = torch.zeros((bs + 1,), dtype=torch.int32, device=self.device)
        qo_indptr[1:] = torch.cumsum(forward_batch.extend_seq_lens, dim=0)
        kv_indptr = torch.zeros((bs + 1,), dtype=torch.int32, device=self.device)
        kv_indptr[1:] = torch.cumsum(forward_batch.seq_lens, dim=0)
        kv_indices = torch.empty(
            (forward_batch.seq_lens_sum,), dtype=torch.int32, device=self.device
        )
        max_q_len = forward_batch.extend_seq_lens.max().item()
        max_kv_len = forward_batch.seq_lens.max().item()

        work_metadata = None
        work_indptr = None
        work_info_set = None
        reduce_indptr = None
        reduce_final_map = None
        reduce_partial_map = None
        fp8_prefill_kv_indices = None

        if _use_fp8_prefill_attn:
            tile_q = 256
            qlen_granularity = tile_q // (self.num_head // self.num_kv_head)
            (
                work_metadata,
                work_indptr,
                work_info_set,
                reduce_indptr,
                reduce_final_map,
                reduce_partial_map,
            ) = self.make_mla_prefill_ps_meta_data_buffer(
                bs, max_q_len, qlen_granularity
            )

            total_s = int(forward_batch.extend_seq_lens.sum())
            fp8_prefill_kv_indices = torch.arange(
                total_s, device=self.device, dtype=torch.int32
            )

        self.forward_metadata = ForwardMetadata(
            kv_indptr,
            kv_indices,
            qo_indptr,
            self.kv_last_page_len[:bs],
            max_q_len,
            max_kv_len,
            work_metadata=work_metadata,
            work_info_set=work_info_set,
            work_indptr=work_indptr,
            reduce_indptr=reduce_indptr,
            reduce_final_map=reduce_final_map,
            reduce_partial_map=reduce_partial_map,
            fp8_prefill_kv_indices=fp8_prefill_kv_indices,
        )

    def forward(self, q, k, v, layer: RadixAttention, forward_batch: ForwardBatch, save_kv_cache=True):
        # AttentionBackend.forward dispatches on the forward mode; decode is cut.
        return self.forward_extend(q, k, v, layer, forward_batch, save_kv_cache)

    def forward_extend(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        layer: RadixAttention,
        forward_batch: ForwardBatch,
        save_kv_cache=True,
    ):
        cache_loc = (
            forward_batch.out_cache_loc
            if not layer.is_cross_attention
            else forward_batch.encoder_out_cache_loc
        )

        self.logits_soft_cap = layer.logit_cap

        if k is not None:
            assert v is not None
            if save_kv_cache:
                if self.use_mla:
                    forward_batch.token_to_kv_pool.set_kv_buffer(layer, cache_loc, k, v)

        if self.use_mla:
            max_q_len = self.forward_metadata.max_q_len
            kv_indices = self.forward_metadata.kv_indices
            qo_indptr = self.forward_metadata.qo_indptr
            assert len(q.shape) == 3
            assert len(k.shape) == 3
            assert len(v.shape) == 3

            if (
                forward_batch.forward_mode.is_extend()
                and not forward_batch.forward_mode.is_target_verify()
                and not forward_batch.forward_mode.is_draft_extend()
            ):
                extend_no_prefix = not any(forward_batch.extend_prefix_lens_cpu)
                if kv_indices.shape[0] == 0 or extend_no_prefix:
                    if _use_fp8_prefill_attn:
                        total_s = q.shape[0]
                        nhead = layer.tp_q_head_num
                        v_head_dim = layer.v_head_dim

                        # q is cast here (after RoPE).
                        # k/v are already FP8 for MXFP4 main model (fused kv_b_proj),
                        # but need casting for FP8/BF16 weights (e.g. MTP draft model).
                        if q.dtype != fp8_dtype:
                            q = q.to(fp8_dtype)
                        if k.dtype != fp8_dtype:
                            k = k.to(fp8_dtype)
                        if v.dtype != fp8_dtype:
                            v = v.to(fp8_dtype)
                        one_scale = torch.tensor(  # SYNC (pre-fix, #19416)
                            1.0, dtype=torch.float32, device=q.device
                        )

                        kv_indptr_asm = qo_indptr
                        kv_indices_asm = self.forward_metadata.fp8_prefill_kv_indices

                        tile_q = 256
                        reduce_indptr = self.forward_metadata.reduce_indptr
                        reduce_final_map = self.forward_metadata.reduce_final_map
                        reduce_partial_map = self.forward_metadata.reduce_partial_map

                        logits = torch.empty(
                            (reduce_partial_map.size(0) * tile_q, nhead, v_head_dim),
                            dtype=torch.float32,
                            device=q.device,
                        )
                        attn_lse = torch.empty(
                            (reduce_partial_map.size(0) * tile_q, nhead),
                            dtype=torch.float32,
                            device=q.device,
                        )
                        final_lse = torch.empty(
                            (total_s, nhead),
                            dtype=torch.float32,
                            device=q.device,
                        )
                        output = q.new_empty(
                            (total_s, nhead, v_head_dim),
                            dtype=self.input_dtype,
                        )

                        mla_prefill_ps_asm_fwd(
                            q,
                            k,
                            v,
                            qo_indptr,
                            kv_indptr_asm,
                            kv_indices_asm,
                            self.forward_metadata.work_indptr,
                            self.forward_metadata.work_info_set,
                            max_q_len,
                            layer.scaling,
                            True,
                            logits,
                            attn_lse,
                            output,
                            one_scale,
                            one_scale,
                            one_scale,
                        )
                        mla_reduce_v1(
                            logits,
                            attn_lse,
                            reduce_indptr,
                            reduce_final_map,
                            reduce_partial_map,
                            tile_q,
                            output,
                            final_lse,
                        )
                        return output
        # Prefix-reuse (absorbed MLA) and non-MLA paths are cut.
        raise NotImplementedError
