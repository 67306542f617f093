"""One serving step, variant (a): as written.

A self-contained model (no vLLM import) of the host-side hot path of one step of
a vLLM-style engine serving LFM2-VL:

(ii) `InputPreparer.prepare`: scheduler output (NumPy arrays, CPU tensors) ->
     the GPU tensors of `CommonAttentionMetadata` (query_start_loc, seq_lens,
     block table, slot_mapping, positions, input_ids);
(i)  `ShortConvAttentionMetadataBuilder.build` and
     `compute_causal_conv1d_metadata`, as in the LFM2-VL write-up
     (shared/seeds/000_*.txt), including its two problems: the deprecated
     `num_computed_tokens_cpu` sent to the GPU from pageable memory, and
     `query_start_loc_p.diff().to("cpu")` followed by pageable copies;
(iii) `Sampler.sample`: banned tokens, greedy/random sampling, stop tokens
     (`if x.any():`, `torch.nonzero`, boolean-mask select) and `.tolist()` of the
     sampled ids.

The "model" between (i)/(ii) and (iii) is a tiny embedding + LM head, so the
logits depend on every metadata tensor. `run_step.py` drives it.
"""

from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

PAD_SLOT_ID = -1
BLOCK_SIZE = 16
BANNED_TOKEN_IDS = [0, 2, 5]


class CommonAttentionMetadata:
    def __init__(
        self,
        query_start_loc: torch.Tensor,
        query_start_loc_cpu: torch.Tensor,
        seq_lens: torch.Tensor,
        seq_lens_cpu: torch.Tensor,
        num_reqs: int,
        num_actual_tokens: int,
        max_query_len: int,
        max_seq_len: int,
        block_table_tensor: torch.Tensor,
        slot_mapping: torch.Tensor,
    ):
        self.query_start_loc = query_start_loc
        self.query_start_loc_cpu = query_start_loc_cpu
        self.seq_lens = seq_lens
        self.seq_lens_cpu = seq_lens_cpu
        self.num_reqs = num_reqs
        self.num_actual_tokens = num_actual_tokens
        self.max_query_len = max_query_len
        self.max_seq_len = max_seq_len
        self.block_table_tensor = block_table_tensor
        self.slot_mapping = slot_mapping
        self._num_computed_tokens_cpu = None

    @property
    def num_computed_tokens_cpu(self) -> torch.Tensor:
        # Deprecated in vLLM: "Prefer using device seq_lens directly to avoid
        # implicit H<>D sync which breaks full async scheduling."
        if self._num_computed_tokens_cpu is None:
            query_seq_lens = self.query_start_loc_cpu[1:] - self.query_start_loc_cpu[:-1]
            self._num_computed_tokens_cpu = self.seq_lens_cpu - query_seq_lens
        return self._num_computed_tokens_cpu


@dataclass
class ShortConvAttentionMetadata:
    query_start_loc: torch.Tensor
    state_indices_tensor: torch.Tensor
    has_initial_states_p: Optional[torch.Tensor]
    num_prefills: int
    num_prefill_tokens: int
    num_decodes: int
    num_decode_tokens: int
    nums_dict: Optional[dict]
    batch_ptr: Optional[torch.Tensor]
    token_chunk_offset_ptr: Optional[torch.Tensor]


def split_decodes_and_prefills(common_attn_metadata: CommonAttentionMetadata, decode_threshold: int = 1):
    """vLLM's helper: reads only host-side data (requests are ordered decodes first)."""
    max_query_len = common_attn_metadata.max_query_len
    num_reqs = common_attn_metadata.num_reqs
    num_tokens = common_attn_metadata.num_actual_tokens
    query_start_loc = common_attn_metadata.query_start_loc_cpu

    if max_query_len <= decode_threshold:
        return num_reqs, 0, num_tokens, 0

    query_lens = query_start_loc[1:] - query_start_loc[:-1]
    is_prefill = query_lens > decode_threshold
    if not torch.any(is_prefill):
        return num_reqs, 0, num_tokens, 0

    first_prefill = is_prefill.int().argmax(dim=-1).item()
    num_decodes = first_prefill
    num_prefills = num_reqs - num_decodes
    num_decode_tokens = query_start_loc[first_prefill].item()
    num_prefill_tokens = num_tokens - num_decode_tokens
    return (num_decodes, num_prefills, num_decode_tokens, num_prefill_tokens)


def compute_causal_conv1d_metadata(query_start_loc_p: torch.Tensor):
    # Needed for causal_conv1d
    seqlens = query_start_loc_p.diff().to("cpu")
    nums_dict = {}  # type: ignore
    batch_ptr = None
    token_chunk_offset_ptr = None
    device = query_start_loc_p.device
    for BLOCK_M in [8]:
        nums = -(-seqlens // BLOCK_M)
        nums_dict[BLOCK_M] = {}
        nums_dict[BLOCK_M]["nums"] = nums
        nums_dict[BLOCK_M]["tot"] = nums.sum().item()
        mlist = torch.from_numpy(np.repeat(np.arange(len(nums)), nums))
        nums_dict[BLOCK_M]["mlist"] = mlist
        mlist_len = len(nums_dict[BLOCK_M]["mlist"])
        nums_dict[BLOCK_M]["mlist_len"] = mlist_len
        MAX_NUM_PROGRAMS = max(1024, mlist_len) * 2
        offsetlist = []  # type: ignore
        for idx, num in enumerate(nums):
            offsetlist.extend(range(num))
        offsetlist = torch.tensor(offsetlist, dtype=torch.int32)
        nums_dict[BLOCK_M]["offsetlist"] = offsetlist

        if batch_ptr is None:
            # Update default value after class definition
            batch_ptr = torch.full((MAX_NUM_PROGRAMS,), PAD_SLOT_ID, dtype=torch.int32, device=device)
            token_chunk_offset_ptr = torch.full((MAX_NUM_PROGRAMS,), PAD_SLOT_ID, dtype=torch.int32, device=device)
        else:
            if batch_ptr.nelement() < MAX_NUM_PROGRAMS:
                batch_ptr.resize_(MAX_NUM_PROGRAMS).fill_(PAD_SLOT_ID)
                token_chunk_offset_ptr.resize_(MAX_NUM_PROGRAMS).fill_(PAD_SLOT_ID)  # type: ignore

        batch_ptr[0:mlist_len].copy_(mlist)
        token_chunk_offset_ptr[0:mlist_len].copy_(offsetlist)  # type: ignore
        nums_dict[BLOCK_M]["batch_ptr"] = batch_ptr
        nums_dict[BLOCK_M]["token_chunk_offset_ptr"] = token_chunk_offset_ptr  # type: ignore

    return nums_dict, batch_ptr, token_chunk_offset_ptr


class ShortConvAttentionMetadataBuilder:
    def __init__(self, max_num_reqs: int, device: torch.device, decode_cudagraph_max_bs: int, full_cudagraphs: bool):
        self.reorder_batch_threshold = 1
        self.decode_cudagraph_max_bs = decode_cudagraph_max_bs
        self.full_cudagraphs = full_cudagraphs
        self.state_indices_tensor = torch.empty((max_num_reqs,), dtype=torch.int32, device=device)

    def build(
        self,
        common_prefix_len: int,
        common_attn_metadata: CommonAttentionMetadata,
        fast_build: bool = False,
    ) -> ShortConvAttentionMetadata:
        num_reqs = common_attn_metadata.num_reqs
        query_start_loc = common_attn_metadata.query_start_loc
        state_indices_tensor = common_attn_metadata.block_table_tensor[:, 0]

        # for causal_conv1d
        nums_dict, batch_ptr, token_chunk_offset_ptr = None, None, None

        num_decodes, num_prefills, num_decode_tokens, num_prefill_tokens = split_decodes_and_prefills(
            common_attn_metadata, decode_threshold=self.reorder_batch_threshold
        )

        has_initial_states_p = None
        if num_prefills > 0:
            has_initial_states_cpu = (
                common_attn_metadata.num_computed_tokens_cpu[num_reqs - num_prefills : num_reqs] > 0
            )
            has_initial_states_p = has_initial_states_cpu.to(query_start_loc.device)

            query_start_loc_p = common_attn_metadata.query_start_loc[-num_prefills - 1 :] - num_decode_tokens

            nums_dict, batch_ptr, token_chunk_offset_ptr = compute_causal_conv1d_metadata(query_start_loc_p)

        elif num_decodes > 0 and num_decodes <= self.decode_cudagraph_max_bs and self.full_cudagraphs:
            self.state_indices_tensor[:num_decodes].copy_(state_indices_tensor, non_blocking=True)
            state_indices_tensor = self.state_indices_tensor[:num_decode_tokens]
            state_indices_tensor[num_decodes:] = PAD_SLOT_ID

        return ShortConvAttentionMetadata(
            query_start_loc=query_start_loc,
            state_indices_tensor=state_indices_tensor,
            has_initial_states_p=has_initial_states_p,
            num_prefills=num_prefills,
            num_prefill_tokens=num_prefill_tokens,
            num_decodes=num_decodes,
            num_decode_tokens=num_decode_tokens,
            nums_dict=nums_dict,
            batch_ptr=batch_ptr,
            token_chunk_offset_ptr=token_chunk_offset_ptr,
        )


class InputPreparer:
    """Scheduler output -> attention metadata on the GPU (vLLM's _prepare_inputs, simplified)."""

    def __init__(self, max_num_reqs: int, max_blocks: int, device: torch.device):
        self.device = device
        self.block_table = torch.zeros((max_num_reqs, max_blocks), dtype=torch.int32, device=device)

    def prepare(
        self,
        num_scheduled_tokens: np.ndarray,
        num_computed_tokens: np.ndarray,
        block_table_cpu: torch.Tensor,
        token_ids_np: np.ndarray,
    ):
        num_reqs = num_scheduled_tokens.shape[0]
        total_num_tokens = int(num_scheduled_tokens.sum())
        cu_num_tokens = np.cumsum(num_scheduled_tokens)

        query_start_loc_cpu = torch.zeros(num_reqs + 1, dtype=torch.int32)
        query_start_loc_cpu[1:] = torch.from_numpy(cu_num_tokens)
        query_start_loc = torch.empty(num_reqs + 1, dtype=torch.int32, device=self.device)
        query_start_loc[0] = 0
        query_start_loc[1:] = torch.from_numpy(cu_num_tokens).to(self.device)

        seq_lens_np = num_computed_tokens + num_scheduled_tokens
        seq_lens = torch.tensor(seq_lens_np.tolist(), dtype=torch.int32, device=self.device)
        seq_lens_cpu = torch.from_numpy(seq_lens_np)
        max_seq_len = seq_lens.max().item()
        max_query_len = int(num_scheduled_tokens.max())

        self.block_table[:num_reqs].copy_(block_table_cpu[:num_reqs])
        block_table_tensor = self.block_table[:num_reqs]

        # Positions and slot mapping, computed on the host with NumPy.
        req_indices = np.repeat(np.arange(num_reqs), num_scheduled_tokens)
        token_offsets = np.arange(total_num_tokens) - (cu_num_tokens - num_scheduled_tokens)[req_indices]
        positions_np = num_computed_tokens[req_indices] + token_offsets
        block_numbers = block_table_cpu.numpy()[req_indices, positions_np // BLOCK_SIZE]
        slot_mapping_np = block_numbers.astype(np.int64) * BLOCK_SIZE + positions_np % BLOCK_SIZE
        positions = torch.from_numpy(positions_np).to(self.device, non_blocking=True)
        slot_mapping = torch.from_numpy(slot_mapping_np).to(self.device, non_blocking=True)
        input_ids = torch.from_numpy(token_ids_np).to(self.device, non_blocking=True)

        common = CommonAttentionMetadata(
            query_start_loc=query_start_loc,
            query_start_loc_cpu=query_start_loc_cpu,
            seq_lens=seq_lens,
            seq_lens_cpu=seq_lens_cpu,
            num_reqs=num_reqs,
            num_actual_tokens=total_num_tokens,
            max_query_len=max_query_len,
            max_seq_len=max_seq_len,
            block_table_tensor=block_table_tensor,
            slot_mapping=slot_mapping,
        )
        return common, positions, input_ids


class TinyModel:
    """Embedding + LM head: enough GPU work that the logits depend on the metadata."""

    def __init__(self, vocab_size: int, hidden_size: int, max_positions: int, device: torch.device):
        self.max_positions = max_positions
        grid = torch.arange(vocab_size * hidden_size, dtype=torch.float32, device=device)
        self.embed = torch.sin(grid * 0.37).reshape(vocab_size, hidden_size)
        self.pos_embed = torch.cos(torch.arange(max_positions * hidden_size, dtype=torch.float32, device=device) * 0.11)
        self.pos_embed = self.pos_embed.reshape(max_positions, hidden_size)
        self.lm_head = torch.sin(grid * 0.73 + 1.0).reshape(hidden_size, vocab_size)

    def forward(self, input_ids: torch.Tensor, positions: torch.Tensor, query_start_loc: torch.Tensor, slot_mapping: torch.Tensor):
        hidden = self.embed[input_ids] + self.pos_embed[positions % self.max_positions]
        hidden = hidden + (slot_mapping % 7).to(torch.float32)[:, None] * 0.01
        last_token = (query_start_loc[1:] - 1).long()
        return hidden[last_token] @ self.lm_head


class Sampler:
    def __init__(self, max_num_reqs: int, vocab_size: int, device: torch.device):
        self.temperature = torch.ones(max_num_reqs, dtype=torch.float32, device=device)
        self.stop_token_base = vocab_size - vocab_size // 8  # the top eighth of the vocabulary stops a request

    def sample(self, logits: torch.Tensor, temperature_cpu: torch.Tensor, generator: torch.Generator):
        num_reqs = logits.shape[0]
        self.temperature[:num_reqs].copy_(temperature_cpu)
        temperature = self.temperature[:num_reqs]

        banned = torch.tensor(BANNED_TOKEN_IDS, device=logits.device)
        logits[:, banned] = float("-inf")

        greedy = temperature == 0
        if greedy.all():
            sampled = logits.argmax(dim=-1)
        else:
            probs = torch.softmax(logits / torch.where(greedy, 1.0, temperature)[:, None], dim=-1)
            q = torch.empty_like(probs).exponential_(generator=generator)
            random_sampled = probs.div(q).argmax(dim=-1)
            sampled = torch.where(greedy, logits.argmax(dim=-1), random_sampled)

        is_stop = sampled >= self.stop_token_base
        finished = None
        if is_stop.any():
            finished = torch.nonzero(is_stop).squeeze(1)
        kept = sampled[~is_stop]
        sampled_ids = sampled.tolist()
        return sampled, sampled_ids, finished, kept


class StepRunner:
    def __init__(self, max_num_reqs: int, max_blocks: int, vocab_size: int, hidden_size: int, device: torch.device):
        self.preparer = InputPreparer(max_num_reqs, max_blocks, device)
        self.builder = ShortConvAttentionMetadataBuilder(max_num_reqs, device, decode_cudagraph_max_bs=32, full_cudagraphs=True)
        self.model = TinyModel(vocab_size, hidden_size, max_blocks * BLOCK_SIZE, device)
        self.sampler = Sampler(max_num_reqs, vocab_size, device)

    def step(self, inputs, generator: torch.Generator) -> dict:
        common, positions, input_ids = self.preparer.prepare(
            inputs.num_scheduled_tokens, inputs.num_computed_tokens, inputs.block_table_cpu, inputs.token_ids_np
        )
        conv = self.builder.build(0, common)
        logits = self.model.forward(input_ids, positions, common.query_start_loc, common.slot_mapping)
        sampled, sampled_ids, finished, kept = self.sampler.sample(logits, inputs.temperature_cpu, generator)
        nums = conv.nums_dict[8] if conv.nums_dict is not None else None
        return {
            "query_start_loc": common.query_start_loc,
            "seq_lens": common.seq_lens,
            "max_seq_len": common.max_seq_len,
            "max_query_len": common.max_query_len,
            "block_table": common.block_table_tensor,
            "slot_mapping": common.slot_mapping,
            "positions": positions,
            "input_ids": input_ids,
            "state_indices_tensor": conv.state_indices_tensor,
            "has_initial_states_p": conv.has_initial_states_p,
            "split": (conv.num_decodes, conv.num_prefills, conv.num_decode_tokens, conv.num_prefill_tokens),
            "conv_nums": None if nums is None else (nums["nums"], nums["tot"], nums["mlist"], nums["mlist_len"], nums["offsetlist"]),
            "batch_ptr": conv.batch_ptr,
            "token_chunk_offset_ptr": conv.token_chunk_offset_ptr,
            "logits": logits,
            "sampled": sampled,
            "sampled_ids": sampled_ids,
            "finished": finished,
            "kept": kept,
        }


def materialize(out: dict) -> dict:
    """Host-side results of a step, once its GPU work may be read (nothing deferred here)."""
    return out
