from dataclasses import dataclass
from typing import Dict, List, Optional

import torch

# (benchmark cut: SamplingMetadata.prepare and the sampling tensors; only the
# fields the logits processors read are kept)


@dataclass
class SequenceGroupToSample:
    seq_ids: List[int]
    sampling_params: "SamplingParams"
    seq_data: Dict[int, "SequenceData"]
    seq_len: Optional[int]
    query_len: Optional[int]
    generator: Optional[torch.Generator]
    is_prompt: bool
    prompt_logprob_indices: List[int]
    sample_indices: List[int]


class SamplingMetadata:

    def __init__(
        self,
        seq_groups: List[SequenceGroupToSample],
        selected_token_indices: torch.Tensor,
        categorized_sample_indices: Dict,
        num_prompts: int,
        skip_sampler_cpu_output: bool = False,
        reuse_sampling_tensors: bool = False,
    ) -> None:
        self.seq_groups = seq_groups
        self.selected_token_indices = selected_token_indices
        self.categorized_sample_indices = categorized_sample_indices
        self.num_prompts = num_prompts
        self.skip_sampler_cpu_output = skip_sampler_cpu_output
        self.reuse_sampling_tensors = reuse_sampling_tensors
