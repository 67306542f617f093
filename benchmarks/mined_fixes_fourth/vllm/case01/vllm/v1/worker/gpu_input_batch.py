# SPDX-License-Identifier: Apache-2.0
# SPDX-FileCopyrightText: Copyright contributors to the vLLM project
# Cut down to the per-request sampling state that reaches the sampler:
# bad_words_token_ids, logprob_token_ids and the output token ids (all
# Python lists). Temperature/top-p/top-k/penalty tensors are dropped.
from typing import cast

import torch

from vllm.v1.sample.metadata import SamplingMetadata


class InputBatch:
    def __init__(
        self,
        max_num_reqs: int,
        device: torch.device,
        pin_memory: bool,
    ):
        self.max_num_reqs = max_num_reqs
        self.device = device
        self.pin_memory = pin_memory

        self._req_ids: list[str | None] = []
        self.req_id_to_index: dict[str, int] = {}
        self.req_output_token_ids: list[list[int] | None] = []

        self.generators: dict[int, torch.Generator] = {}
        self.num_logprobs: dict[str, int] = {}
        self.logprob_token_ids: dict[str, list[int]] = {}

        # req_index -> bad_words_token_ids
        self.bad_words_token_ids: dict[int, list[list[int]]] = {}

        self.spec_token_ids: list[list[int]] = []
        self.sampling_metadata = self._make_sampling_metadata()

    @property
    def num_reqs(self) -> int:
        return len(self.req_id_to_index)

    @property
    def max_num_logprobs(self) -> int | None:
        return max(self.num_logprobs.values()) if self.num_logprobs else None

    def add_request(
        self,
        req_id: str,
        output_token_ids: list[int],
        bad_words_token_ids: list[list[int]] | None = None,
        logprob_token_ids: list[int] | None = None,
    ) -> int:
        req_index = len(self._req_ids)
        self._req_ids.append(req_id)
        self.req_output_token_ids.append(output_token_ids)
        self.req_id_to_index[req_id] = req_index
        if logprob_token_ids is not None:
            self.logprob_token_ids[req_id] = logprob_token_ids
        if bad_words_token_ids:
            self.bad_words_token_ids[req_index] = bad_words_token_ids
        return req_index

    def refresh_metadata(self):
        self.sampling_metadata = self._make_sampling_metadata()

    def _make_sampling_metadata(self) -> SamplingMetadata:
        needs_output_token_ids = bool(self.bad_words_token_ids)
        output_token_ids = (
            cast(list[list[int]], self.req_output_token_ids)
            if needs_output_token_ids
            else []
        )

        # Build per-request logprob_token_ids mapping: req_index -> token_ids
        logprob_token_ids_by_index: dict[int, list[int]] | None = None
        if self.logprob_token_ids:
            logprob_token_ids_by_index = {}
            for req_id, token_ids in self.logprob_token_ids.items():
                if req_id in self.req_id_to_index:
                    req_index = self.req_id_to_index[req_id]
                    logprob_token_ids_by_index[req_index] = token_ids

        return SamplingMetadata(
            temperature=None,
            all_greedy=True,
            all_random=False,
            top_p=None,
            top_k=None,
            generators=self.generators,
            max_num_logprobs=self.max_num_logprobs,
            logprob_token_ids=logprob_token_ids_by_index,
            prompt_token_ids=None,
            output_token_ids=output_token_ids,
            spec_token_ids=self.spec_token_ids,
            no_penalties=True,
            allowed_token_ids_mask=None,
            bad_words_token_ids=self.bad_words_token_ids,
        )
