from __future__ import annotations

import dataclasses
from typing import Optional

import torch

from sglang.srt.mem_cache.allocator.swa import SWATokenToKVPoolAllocator


class TreeNode:
    def __init__(self, id: Optional[int] = None):
        self.children = {}
        self.parent: TreeNode = None
        self.key = None
        self.value: Optional[torch.Tensor] = None
        self.full_lock_ref = 0
        self.swa_lock_ref = 0
        self.swa_tombstone = False
        self.id = id


class LRUList:
    def __init__(self, is_swa_list: bool = False):
        self.nodes = []

    def insert_mru(self, node):
        self.nodes.append(node)


@dataclasses.dataclass
class CacheInitParams:
    req_to_token_pool: object
    token_to_kv_pool_allocator: SWATokenToKVPoolAllocator
    page_size: int = 1


class SWARadixCache:
    def __init__(self, params: CacheInitParams):
        assert isinstance(params.token_to_kv_pool_allocator, SWATokenToKVPoolAllocator)
        self.req_to_token_pool = params.req_to_token_pool
        self.token_to_kv_pool_allocator = params.token_to_kv_pool_allocator
        self.page_size = params.page_size
        self.swa_lru_list = LRUList(is_swa_list=True)
        self.swa_evictable_size_ = 0

    def _insert_tombstoned_prefix(
        self, node: TreeNode, value: torch.Tensor, prefix_len: int
    ):
        # Simplified from _insert_helper, "Branch 1": all swa tokens of
        # value[:prefix_len] are not evicted, so we can insert it to the tree directly.
        if node.full_lock_ref > 0:
            # Full KV is still locked by a running request. Keep it
            # and adopt the incoming SWA instead of freeing in-flight
            # Full slots.
            self._recover_tombstone_keeping_locked_full(node, value[:prefix_len])
        else:
            # Free full tokens in the original tree node.
            self.token_to_kv_pool_allocator.free(node.value[:prefix_len])
            # Overwrite the new value in request to the tree node.
            node.value = value[:prefix_len].clone()
            node.swa_tombstone = False
            self.swa_lru_list.insert_mru(node)
            self.swa_evictable_size_ += len(node.value)

    def _recover_tombstone_keeping_locked_full(
        self, node: TreeNode, incoming_full: torch.Tensor
    ) -> None:
        """Recover a tombstoned node whose Full KV is locked by a running request.

        Keep node.value, the locked Full slots, and re-point its full->SWA
        mapping at the incoming request's fresh SWA. Free only the incoming
        redundant Full slots, not their SWA slots.
        """
        assert len(node.value) == len(incoming_full), (
            f"locked-full recover size mismatch: {len(node.value)=}, "
            f"{len(incoming_full)=}"
        )

        allocator = self.token_to_kv_pool_allocator
        swa_value = allocator.translate_loc_from_full_to_swa(incoming_full)
        allocator.set_full_to_swa_mapping(node.value, swa_value)
        allocator.full_to_swa_index_mapping[incoming_full.to(torch.int64)] = 0  # SYNC (pre-fix, #35773)
        allocator.full_attn_allocator.free(incoming_full)

        node.swa_tombstone = False
        self.swa_lru_list.insert_mru(node)
        self.swa_evictable_size_ += len(node.value)
