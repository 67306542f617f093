from dataclasses import dataclass


@dataclass
class ServerArgs:
    device: str = "cuda"
    page_size: int = 1
    max_running_requests: int = 64
    disable_overlap_schedule: bool = False
    speculative_algorithm: str = "NGRAM"
    speculative_num_draft_tokens: int = 8
    speculative_ngram_max_trie_depth: int = 18
    speculative_eagle_topk: int = 1
    speculative_num_steps: int = 1
