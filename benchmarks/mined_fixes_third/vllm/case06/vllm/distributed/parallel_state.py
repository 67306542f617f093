# SPDX-License-Identifier: Apache-2.0
# Cut down: the decode-context-parallel group handle only.
from dataclasses import dataclass


@dataclass
class GroupCoordinator:
    world_size: int
    rank_in_group: int


_DCP: GroupCoordinator | None = None


def init_dcp_group(world_size: int, rank: int) -> None:
    global _DCP
    _DCP = GroupCoordinator(world_size=world_size, rank_in_group=rank)


def get_dcp_group() -> GroupCoordinator:
    assert _DCP is not None, "decode context model parallel group is not initialized"
    return _DCP
