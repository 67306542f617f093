from __future__ import annotations

import dataclasses
from typing import List, Optional

import torch

from sglang.srt.mem_cache.memory_pool import ReqToTokenPool


class Req:
    def __init__(self, rid: str, origin_input_ids: List[int]):
        self.rid = rid
        self.origin_input_ids = origin_input_ids
        self.output_ids: List[int] = []
        self.fill_len = 0


def _compute_chunked_req_next_prompt_token(
    chunked_req: Optional[Req],
) -> Optional[int]:
    if chunked_req is None:
        return None
    fill_len = chunked_req.fill_len
    if fill_len >= len(chunked_req.origin_input_ids):
        return None
    return int(chunked_req.origin_input_ids[fill_len])


@dataclasses.dataclass
class ScheduleBatch:
    """Store all information of a batch on the scheduler."""

    reqs: List[Req]
    req_to_token_pool: ReqToTokenPool = None
    chunked_req: Optional[Req] = None
    # The next prompt token of the chunked request (for EAGLE draft rotation).
    chunked_req_next_prompt_token: Optional[int] = None

    input_ids: torch.Tensor = None  # shape: [b], int64
    seq_lens: torch.Tensor = None  # shape: [b], int64
    extend_lens: List[int] = None

    device: str = "cuda"

    @classmethod
    def init_new(cls, reqs: List[Req], req_to_token_pool: ReqToTokenPool, chunked_req: Optional[Req]):
        return cls(
            reqs=reqs,
            req_to_token_pool=req_to_token_pool,
            chunked_req=chunked_req,
            chunked_req_next_prompt_token=_compute_chunked_req_next_prompt_token(
                chunked_req
            ),
            device=req_to_token_pool.device,
        )

    def prepare_for_extend(self):
        input_ids = [r.origin_input_ids[r.fill_len :] for r in self.reqs]
        self.extend_lens = [len(x) for x in input_ids]
        self.input_ids = torch.tensor(sum(input_ids, []), dtype=torch.int64).to(
            self.device, non_blocking=True
        )
