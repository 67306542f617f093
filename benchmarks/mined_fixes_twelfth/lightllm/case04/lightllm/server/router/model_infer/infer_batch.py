import os
import copy
import time
import torch
import torch.distributed as dist
import numpy as np
import collections

from dataclasses import dataclass, field
from typing import List, Dict, Tuple, Optional, Union, Any
from lightllm.common.req_manager import ReqManager
from lightllm.utils.infer_utils import mark_start, mark_end
from lightllm.server.core.objs import Req, SamplingParams, FinishStatus, ShmReqManager
from lightllm.server.router.dynamic_prompt.radix_cache import RadixCache, TreeNode
from lightllm.utils.log_utils import init_logger
from lightllm.server.req_id_generator import convert_sub_id_to_group_id
from lightllm.common.basemodel.infer_lock import g_infer_state_lock
from lightllm.server.multimodal_params import MultimodalParams
from lightllm.utils.custom_kernel_utis import custom_cat

logger = init_logger(__name__)


@dataclass
class InferenceContext:
    req_manager: ReqManager = None  # gpu 请求管理
    radix_cache: RadixCache = None
    shm_req_manager: ShmReqManager = None  # 共享内存请求对象管理
    requests_mapping: Dict[int, "InferReq"] = None
    group_mapping = None  # 只有进行多输出模式下才有真的使用
    infer_req_ids = None
    vocab_size = None

    overlap_stream: torch.cuda.Stream = None  # 一些情况下推理进程进行异步折叠操作的异步流对象。

    def register(
        self, req_manager: ReqManager, radix_cache: RadixCache, shm_req_manager: ShmReqManager, vocab_size: int
    ):
        self.req_manager = req_manager
        self.radix_cache = radix_cache
        self.shm_req_manager = shm_req_manager

        self.requests_mapping = {}
        self.group_mapping: Dict[int, InferReqGroup] = {}
        self.infer_req_ids = []

        self.vocab_size = vocab_size
        return

    def get_overlap_stream(self) -> torch.cuda.Stream:
        if self.overlap_stream is None:
            self.overlap_stream = torch.cuda.Stream()
        return self.overlap_stream

    # (benchmark cut: add_reqs, free_a_req_mem, _save_promptcache_kvbuffer, filter, filter_reqs, pause_reqs)

g_infer_context = InferenceContext()


class InferSamplingParams:
    def __init__(
        self,
        shm_req: Req,
        vocab_size: int,
    ) -> None:
        self.shm_param = shm_req.sample_params
        if self.shm_param.top_k == -1:
            self.shm_param.top_k = vocab_size

        # output constraint states
        self.regular_constraint = self.shm_param.regular_constraint.to_str()
        self.guided_grammar = self.shm_param.guided_grammar.to_str()
        self.guided_json = self.shm_param.guided_json.to_str()
        if len(self.regular_constraint) == 0:
            self.regular_constraint = None
        if len(self.guided_grammar) == 0:
            self.guided_grammar = None
        if len(self.guided_json) == 0:
            self.guided_json = None

        self.fsm_current_state: int = 0
        self.allowed_token_ids = self.shm_param.allowed_token_ids.to_list()
        if len(self.allowed_token_ids) == 0:
            self.allowed_token_ids = None

        # p d mode use params
        if self.shm_param.move_kv_to_decode_node.exists:
            self.move_kv_to_decode_node = self.shm_param.move_kv_to_decode_node.to_dict()
        else:
            self.move_kv_to_decode_node = None

        # this check is not very good to placed here. to do...
        if self.allowed_token_ids is not None:
            if not all(e < vocab_size for e in self.allowed_token_ids):
                logger.error("allowed_token_ids contain tokenid >= vobsize, we remove these token ids")
                self.allowed_token_ids = [e for e in self.allowed_token_ids if e < vocab_size]
        return

    def has_constraint_setting(self) -> bool:
        return (
            self.regular_constraint is not None
            or self.allowed_token_ids is not None
            or self.guided_grammar is not None
            or self.guided_json is not None
        )


class InferReq:
    def __init__(
        self,
        req_id: int,
        req_idx: int,
        shm_index: int,
        multimodal_params=None,
        vocab_size: int = -1,
    ):
        self.req_id = req_id
        self.req_idx = req_idx
        self.shm_index = shm_index
        self.multimodal_params = multimodal_params
        self.vocab_size = vocab_size
        self.initialized = False
        self.paused = False

    def init_all(self):
        if self.initialized is False:
            self.shm_req = g_infer_context.shm_req_manager.get_req_obj_by_index(self.shm_index)
            self.shm_req.link_prompt_ids_shm_array()
            self.shm_req.link_logprobs_shm_array()
            self.sampling_param: InferSamplingParams = InferSamplingParams(self.shm_req, self.vocab_size)
            if self.sampling_param.shm_param.input_penalty:
                self.out_token_id_count = collections.Counter(self.shm_req.get_prompt_ids())
            else:
                self.out_token_id_count = collections.defaultdict(int)

            self.stop_sequences = self.sampling_param.shm_param.stop_sequences.to_list()
            # token healing mode 才被使用的管理对象
            if self.shm_req.prefix_token_ids.size != 0:
                self.prefix_token_ids = self.shm_req.prefix_token_ids.get_token_ids()
            else:
                self.prefix_token_ids = []
            self.multimodal_params = self.multimodal_params.to_dict()
            self.shared_kv_node: TreeNode = None
            self.cur_kv_len = 0
            self.cur_output_len = 0
            self.finish_status = FinishStatus()

        if self.paused or not self.initialized:
            # 如果是具有 prompt_cache 的使用特性则需要进行提前的填充和恢复操作。
            if g_infer_context.radix_cache is not None and self.get_cur_total_len() > 1:
                input_token_ids = self.shm_req.shm_prompt_ids.arr[0 : self.get_cur_total_len()]
                key = torch.tensor(input_token_ids, dtype=torch.int64, device="cpu")
                key = key[0 : len(key) - 1]  # 最后一个不需要，因为需要一个额外的token，让其在prefill的时候输出下一个token的值
                share_node, kv_len, value_tensor = g_infer_context.radix_cache.match_prefix(key, update_refs=True)
                if share_node is not None:
                    self.shared_kv_node = share_node
                    ready_cache_len = share_node.node_prefix_total_len
                    # 从 cpu 到 gpu 是流内阻塞操作
                    g_infer_context.req_manager.req_to_token_indexs[self.req_idx, 0:ready_cache_len] = value_tensor
                    self.cur_kv_len = int(ready_cache_len)  # 序列化问题, 该对象可能为numpy.int64，用 int(*)转换
                    self.shm_req.prompt_cache_len = self.cur_kv_len  # 记录 prompt cache 的命中长度

            self.shm_req.shm_cur_kv_len = self.cur_kv_len

        self.initialized = True
        self.paused = False
        return

    def is_uninitialized(self):
        return not self.initialized or self.paused

    def get_output_len(self):
        return self.cur_output_len

    def get_cur_total_len(self):
        return self.shm_req.input_len + self.cur_output_len

    def get_input_token_ids(self):
        return self.shm_req.shm_prompt_ids.arr[0 : self.get_cur_total_len()]

    def get_chuncked_input_token_ids(self):
        chunked_start = self.cur_kv_len
        chunked_end = min(self.get_cur_total_len(), chunked_start + self.shm_req.chunked_prefill_size)
        return self.shm_req.shm_prompt_ids.arr[0:chunked_end]

    def get_chuncked_input_token_len(self):
        chunked_start = self.cur_kv_len
        chunked_end = min(self.get_cur_total_len(), chunked_start + self.shm_req.chunked_prefill_size)
        return chunked_end

    def set_next_gen_token_id(self, next_token_id: int, logprob: float):
        index = self.get_cur_total_len()
        self.shm_req.shm_prompt_ids.arr[index] = next_token_id
        self.shm_req.shm_logprobs.arr[index] = logprob
        return

    def get_last_gen_token(self):
        return self.shm_req.shm_prompt_ids.arr[self.shm_req.input_len + self.cur_output_len - 1]

    def update_finish_status(self, eos_ids):
        if self._stop_sequences_matched():
            self.finish_status.set_status(FinishStatus.FINISHED_STOP)
        elif (
            self.cur_output_len > 0
            and self.get_last_gen_token() in eos_ids
            and self.sampling_param.shm_param.ignore_eos is False
        ):
            self.finish_status.set_status(FinishStatus.FINISHED_STOP)
        elif self.cur_output_len >= self.sampling_param.shm_param.max_new_tokens:
            self.finish_status.set_status(FinishStatus.FINISHED_LENGTH)
        return

    def is_finished_or_aborted(self):
        return self.finish_status.is_finished() or self.shm_req.router_aborted

    def _stop_sequences_matched(self):
        for stop_token_ids in self.stop_sequences:
            stop_len = len(stop_token_ids)
            output_len = self.cur_output_len
            if stop_len > 0:
                if output_len >= stop_len:
                    input_token_ids = self.shm_req.shm_prompt_ids.arr[
                        0 : (self.shm_req.input_len + self.cur_output_len)
                    ]
                    if all(input_token_ids[i] == stop_token_ids[i] for i in range(-1, -(stop_len + 1), -1)):
                        return True
        return False

# (benchmark cut: InferReqGroup (multi-output mode))
