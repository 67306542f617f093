# SPDX-License-Identifier: Apache-2.0
# SPDX-FileCopyrightText: Copyright contributors to the vLLM project
# Cut down to the request bookkeeping the mm-prefix ranges read.
from dataclasses import dataclass

from vllm.multimodal.inputs import MultiModalFeatureSpec


@dataclass
class CachedRequestState:
    req_id: str
    prompt_token_ids: list[int] | None
    mm_features: list[MultiModalFeatureSpec]

    block_ids: tuple[list[int], ...]
    num_computed_tokens: int
    output_token_ids: list[int]


class InputBatch:
    def __init__(self, max_num_reqs: int):
        self.max_num_reqs = max_num_reqs
        self._req_ids: list[str | None] = []
        self.req_id_to_index: dict[str, int] = {}

    @property
    def req_ids(self) -> list[str]:
        # None elements should only be present transiently
        # while performing state updates to the batch.
        return [req_id for req_id in self._req_ids if req_id is not None]

    def add_request(self, request: CachedRequestState) -> int:
        req_index = len(self._req_ids)
        self._req_ids.append(request.req_id)
        self.req_id_to_index[request.req_id] = req_index
        return req_index
