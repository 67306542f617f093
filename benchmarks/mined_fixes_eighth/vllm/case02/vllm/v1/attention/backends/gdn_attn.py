# SPDX-License-Identifier: Apache-2.0
# SPDX-FileCopyrightText: Copyright contributors to the vLLM project
"""Backend for GatedDeltaNet attention."""
from dataclasses import dataclass
from typing import Optional

import torch

from vllm.config import VllmConfig
from vllm.v1.attention.backends.utils import (CommonAttentionMetadata,
                                              split_decodes_and_prefills)
from vllm.v1.kv_cache_interface import AttentionSpec, MambaSpec

# (benchmark cut: GDNAttentionBackend, AttentionMetadataBuilder base class)



@dataclass
class GDNAttentionMetadata:
    num_prefills: int
    num_prefill_tokens: int
    num_decodes: int
    num_decode_tokens: int
    num_spec_decodes: int
    num_spec_decode_tokens: int
    num_actual_tokens: int

    has_initial_state: Optional[torch.Tensor] = None

    spec_query_start_loc: Optional[
        torch.Tensor] = None  # shape: [num_spec_decodes + 1,]
    non_spec_query_start_loc: Optional[
        torch.Tensor] = None  # shape: [batch - num_spec_decodes + 1,]

    spec_state_indices_tensor: Optional[
        torch.Tensor] = None  # shape: [batch, num_spec]
    non_spec_state_indices_tensor: Optional[
        torch.Tensor] = None  # shape: [batch - num_spec_decodes,]
    spec_sequence_masks: Optional[torch.Tensor] = None  # shape: [batch,]
    spec_token_masks: Optional[
        torch.
        Tensor] = None  # shape: [num_prefill_tokens + num_decode_tokens,]
    num_accepted_tokens: Optional[torch.Tensor] = None  # shape: [batch,]

    # The following attributes are for triton implementation of causal_conv1d
    nums_dict: Optional[dict] = None
    batch_ptr: Optional[torch.Tensor] = None
    token_chunk_offset_ptr: Optional[torch.Tensor] = None



class GDNAttentionMetadataBuilder:

    reorder_batch_threshold: int = 1

    def __init__(self, kv_cache_spec: AttentionSpec, layer_names: list[str],
                 vllm_config: VllmConfig, device: torch.device):
        assert isinstance(kv_cache_spec, MambaSpec)
        self.vllm_config = vllm_config
        self.compilation_config = vllm_config.compilation_config
        self.speculative_config = vllm_config.speculative_config
        self.kv_cache_spec = kv_cache_spec
        if self.speculative_config:
            self.num_spec = self.speculative_config.num_speculative_tokens  # noqa: E501
        else:
            self.num_spec = 0
        self.use_spec_decode = self.num_spec > 0
        # (benchmark cut: full-cudagraph persistent buffers)

    def build(  # type: ignore[override]
        self,
        common_prefix_len: int,
        common_attn_metadata: CommonAttentionMetadata,
        num_accepted_tokens: Optional[torch.Tensor] = None,
        num_draft_tokens: Optional[torch.Tensor] = None,
        fast_build: bool = False,
    ) -> GDNAttentionMetadata:
        m = common_attn_metadata

        query_start_loc = m.query_start_loc
        context_lens = m.num_computed_tokens_cpu
        context_lens_tensor = context_lens.to(query_start_loc.device)
        seq_lens_tensor = m.seq_lens
        nums_dict, batch_ptr, token_chunk_offset_ptr = None, None, None

        if (not self.use_spec_decode or num_draft_tokens is None  # SYNC (pre-fix, #25743)
                or num_draft_tokens.sum().item() == 0):
            spec_sequence_masks = None
        else:
            spec_sequence_masks = (num_draft_tokens > 0) & (
                context_lens_tensor +
                (num_draft_tokens + 1) == seq_lens_tensor)
            if spec_sequence_masks.sum().item() == 0:  # SYNC (pre-fix, #25743)
                spec_sequence_masks = None

        if spec_sequence_masks is None:
            num_decodes, num_prefills, num_decode_tokens, num_prefill_tokens = (
                split_decodes_and_prefills(m, decode_threshold=1))
            num_spec_decodes = 0
            num_spec_decode_tokens = 0
            spec_token_masks = None
            spec_state_indices_tensor = None
            non_spec_state_indices_tensor = m.block_table_tensor[:, 0]
            spec_query_start_loc = None
            non_spec_query_start_loc = query_start_loc
            num_accepted_tokens = None
        else:
            num_spec_decodes = spec_sequence_masks.sum().item()  # SYNC (pre-fix, #25743)
            # (benchmark cut: the rest of the spec-decode branch: query_lens,
            # spec / non-spec splits, spec_token_masks, state indices,
            # accepted tokens; the PR left those lines unchanged)

        # (benchmark cut: has_initial_state / causal_conv1d metadata and the
        # full-cudagraph padding)
        num_actual_tokens = num_prefill_tokens + num_decode_tokens + \
            num_spec_decode_tokens

        attn_metadata = GDNAttentionMetadata(
            num_prefills=num_prefills,
            num_prefill_tokens=num_prefill_tokens,
            num_decodes=num_decodes,
            num_decode_tokens=num_decode_tokens,
            num_spec_decodes=num_spec_decodes,
            num_spec_decode_tokens=num_spec_decode_tokens,
            num_actual_tokens=num_actual_tokens,
            spec_query_start_loc=spec_query_start_loc,
            non_spec_query_start_loc=non_spec_query_start_loc,
            spec_state_indices_tensor=spec_state_indices_tensor,
            non_spec_state_indices_tensor=non_spec_state_indices_tensor,
            spec_sequence_masks=spec_sequence_masks,
            spec_token_masks=spec_token_masks,
            num_accepted_tokens=num_accepted_tokens,
            nums_dict=nums_dict,
            batch_ptr=batch_ptr,
            token_chunk_offset_ptr=token_chunk_offset_ptr,
        )
        return attn_metadata
