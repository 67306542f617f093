"""Distributed state: process groups for tensor / pipeline parallelism.

(benchmark cut: module docstring)
"""

import logging
from datetime import timedelta
from typing import Any, Dict, List, Optional, Tuple, Union

import torch
import torch.distributed
from torch.distributed import Backend, ProcessGroup

from sglang.srt.environ import envs
from sglang.srt.utils import get_int_env_var, is_cuda_alike, is_npu, is_xpu

logger = logging.getLogger(__name__)

_is_npu = is_npu()
_is_xpu = is_xpu()
_is_musa = False  # (benchmark cut: is_musa())


class GroupCoordinator:
    """
    PyTorch ProcessGroup wrapper for a group of processes.
    PyTorch ProcessGroup is bound to one specific communication backend,
        e.g. NCCL, Gloo, MPI, etc.
    GroupCoordinator takes charge of all the communication operations among
        the processes in the group. It can route the communication to
        a specific implementation (e.g. switch allreduce implementation
        based on the tensor size and cuda graph mode).
    """

    # available attributes:
    rank: int  # global rank
    ranks: List[int]  # global ranks in the group
    world_size: int  # size of the group
    # difference between `local_rank` and `rank_in_group`:
    # if we have a group of size 4 across two nodes:
    # Process | Node | Rank | Local Rank | Rank in Group
    #   0     |   0  |  0   |     0      |       0
    #   1     |   0  |  1   |     1      |       1
    #   2     |   1  |  2   |     0      |       2
    #   3     |   1  |  3   |     1      |       3
    local_rank: int  # local rank used to assign devices
    rank_in_group: int  # rank inside the group
    cpu_group: ProcessGroup  # group for CPU communication
    device_group: ProcessGroup  # group for device communication
    use_pynccl: bool  # a hint of whether to use PyNccl
    use_pymscclpp: bool  # a hint of whether to use PyMsccl
    use_custom_allreduce: bool  # a hint of whether to use CustomAllreduce
    use_torch_symm_mem_all_reduce: (
        bool  # a hint of whether to use TorchSymmMemAllReduce
    )
    use_message_queue_broadcaster: (
        bool  # a hint of whether to use message queue broadcaster
    )
    # communicators are only created for world size > 1
    pynccl_comm: Optional[Any]  # PyNccl communicator
    ca_comm: Optional[Any]  # Custom allreduce communicator
    torch_symm_mem_comm: Optional[Any]  # Torch symm mem communicator
    mq_broadcaster: Optional[Any]  # shared memory broadcaster

    def __init__(
        self,
        group_ranks: List[List[int]],
        local_rank: int,
        torch_distributed_backend: Union[str, Backend],
        use_pynccl: bool,
        use_pymscclpp: bool,
        use_custom_allreduce: bool,
        use_torch_symm_mem_all_reduce: bool,
        use_hpu_communicator: bool,
        use_xpu_communicator: bool,
        use_npu_communicator: bool,
        use_message_queue_broadcaster: bool = False,
        group_name: Optional[str] = None,
        gloo_timeout: timedelta = timedelta(seconds=120 * 60),
        recovered_rank: bool = False,
        rank_offset: int = 0,
        max_world_size: Optional[int] = None,
    ):
        # Set group info
        group_name = group_name or "anonymous"
        # (benchmark cut: unique name registration)

        # Set rank info
        self.rank = torch.distributed.get_rank()
        self.local_rank = local_rank
        self.device_group = None
        self.cpu_group = None
        self.local_size = get_int_env_var("LOCAL_SIZE", 0)

        if is_cuda_alike():
            device_id = (
                0 if envs.SGLANG_ONE_VISIBLE_DEVICE_PER_PROCESS.get() else local_rank
            )
            self.device = torch.device(f"cuda:{device_id}")
        elif _is_npu:
            self.device = torch.device(f"npu:{local_rank}")
        elif _is_xpu:
            self.device = torch.device(f"xpu:{local_rank}")
        elif _is_musa:
            self.device = torch.device(f"musa:{local_rank}")
        else:
            self.device = torch.device("cpu")
        self.device_module = torch.get_device_module(self.device)

        for ranks in group_ranks:
            # (benchmark cut: mooncake backend branch, pg options, subgroup timeout)
            active_ranks = torch.ones(
                len(ranks), dtype=torch.int32, device=self.device
            )
            active_ranks_cpu = torch.ones(len(ranks), dtype=torch.int32)
            device_group = torch.distributed.new_group(
                ranks,
                backend=torch_distributed_backend,
                group_desc=f"{group_name}:device",
            )
            # a group with `gloo` backend, to allow direct coordination
            # between processes through the CPU.
            cpu_group = torch.distributed.new_group(
                ranks,
                backend="gloo",
                timeout=gloo_timeout,
                group_desc=f"{group_name}:cpu",
            )
            if self.rank in ranks:
                self.ranks = ranks
                self.world_size = len(ranks)
                self.rank_in_group = ranks.index(self.rank)
                self.device_group = device_group
                self.cpu_group = cpu_group
                self.active_ranks = active_ranks
                self.active_ranks_cpu = active_ranks_cpu

        assert self.cpu_group is not None
        assert self.device_group is not None

        # (benchmark cut: communicators: pynccl, custom allreduce, symm mem, mq broadcaster)


_TP: Optional[GroupCoordinator] = None


def get_tp_group() -> GroupCoordinator:
    # (benchmark cut: PD-multiplexing prefill TP group)
    assert _TP is not None, "tensor model parallel group is not initialized"
    return _TP


# (benchmark cut: initialize_model_parallel, which sets _TP = init_model_parallel_group(...))
