# Copyright (c) OpenMMLab. All rights reserved.
import asyncio
import os
from dataclasses import dataclass
from typing import Any, Dict, List

import torch

from lmdeploy.messages import PytorchEngineConfig
from lmdeploy.utils import get_logger, get_model, logging_timer

from ..adapter.adapter import SchedulerAdapter
from ..check_env import check_adapters, check_env, check_model
from ..config import CacheConfig, SchedulerConfig
from ..messages import SchedulerSequence
from ..paging import Scheduler
from .logits_process import FusedLogitsProcessor, SamplingInputs
from .model_agent import AutoModelAgent, ModelInputs

logger = get_logger('lmdeploy')

SeqList = List[SchedulerSequence]
AdapterList = List[SchedulerAdapter]


def _raise_exception_on_finish(task: asyncio.Task) -> None:
    """raise exception on finish."""
    try:
        task.result()
    except asyncio.CancelledError:
        return
    except Exception as e:
        raise e


class NoRunningSeqs(Exception):
    """NoRunningSeqs."""
    pass


@dataclass
class InferOutput:
    """The output of the model inference."""

    session_id: int
    token_ids: List[int]
    sender_id: int
    req_id: int
    meta: Any = None
    finish: bool = False
    logits: torch.Tensor = None


class Engine:
    """The inference engine of lmdeploy pytorch.

    Args:
        model_path (str): The hugging face model path.
        engine_config (PytorchEngineConfig): The config of the Engine.
        trust_remote_code (bool): Trust remote code.
    """

    def __init__(self,
                 model_path: str,
                 engine_config: PytorchEngineConfig = None,
                 trust_remote_code: bool = True) -> None:
        check_env()
        check_model(model_path, trust_remote_code)
        if engine_config is None:
            engine_config = PytorchEngineConfig()
        if engine_config.adapters is not None:
            check_adapters(list(engine_config.adapters.values()))

        self.engine_config = engine_config
        model_name = engine_config.model_name
        tp = engine_config.tp

        self.tp = tp
        self.model_name = model_name

        scheduler_config = SchedulerConfig(
            max_batches=engine_config.max_batch_size,
            max_session_len=engine_config.session_len,
            eviction_type=engine_config.eviction_type,
            prefill_interval=engine_config.prefill_interval)

        # block_size = 1 to enable unified paging
        adapters = engine_config.adapters
        cache_config = CacheConfig(
            block_size=engine_config.block_size,
            num_cpu_blocks=engine_config.num_cpu_blocks,
            num_gpu_blocks=engine_config.num_gpu_blocks,
            cache_max_entry_count=engine_config.cache_max_entry_count,
            max_prefill_token_num=engine_config.max_prefill_token_num)

        if not os.path.exists(model_path):
            model_path = get_model(model_path, engine_config.download_dir,
                                   engine_config.revision)
        self.model_path = model_path

        self.model_agent = AutoModelAgent.from_pretrained(
            model_path,
            cache_config=cache_config,
            trust_remote_code=trust_remote_code,
            adapters=adapters,
            tp=tp)

        cache_config = self.model_agent.cache_config
        self.scheduler = Scheduler(scheduler_config, cache_config)

        # (benchmark cut: _paging_adapters)

        self.scheduler_config = scheduler_config
        self.cache_config = cache_config
        self.stream = torch.cuda.Stream()

        # (benchmark cut: request manager, loop start, buffers, engine instance)

    # (benchmark cut: request handlers, model_config, gpu_count)

    @logging_timer('CreateModelInputs', logger)
    @torch.inference_mode()
    def create_model_inputs(self, messages: SeqList, adapters: AdapterList):
        """create model inputs from messages."""
        # (benchmark cut: body; builds a ModelInputs of CPU tensors from the scheduled messages)
        raise NotImplementedError

    def _batch_stopping_criteria(self, token_ids: torch.Tensor,
                                 stop_words: torch.Tensor,
                                 num_appendable_ids: torch.Tensor):
        """batched stopping criteria."""
        with torch.inference_mode(), torch.cuda.stream(self.stream):
            num_appendable_ids = num_appendable_ids - 1
            stopped = num_appendable_ids <= 0
            if stop_words is not None:
                sw_stopped = (token_ids[:, None] == stop_words).any(1)
                stopped = stopped | sw_stopped
        self.stream.synchronize()  # SYNC (pre-fix, #1457)
        return stopped, num_appendable_ids

    @logging_timer('SamplingLogits', logger)
    async def async_sampling_logits(self, logits: torch.Tensor,
                                    history_ids: torch.Tensor,
                                    sampling_inputs: SamplingInputs,
                                    inputs: ModelInputs,
                                    ignore_eos: torch.Tensor):
        """sampling logits."""

        def __get_last_logits():
            """get last logits."""
            if inputs.is_decoding:
                return logits

            seq_length = inputs.seq_length
            last_idx = seq_length.cumsum(-1) - 1
            return logits[last_idx, :]

        split_logits = __get_last_logits().cuda()
        logits_processor = FusedLogitsProcessor(sampling_inputs, ignore_eos)
        with torch.inference_mode(), torch.cuda.stream(self.stream):
            logits = logits_processor(history_ids, split_logits)
            next_token_ids = logits_processor.sampling(logits)
        self.stream.synchronize()  # SYNC (pre-fix, #1457)
        next_token_ids = next_token_ids

        return next_token_ids

    @logging_timer('ModelForward', logger)
    async def _async_model_forward(self, inputs: ModelInputs,
                                   swap_in_map: Dict, swap_out_map: Dict):
        """model forward."""
        max_prefill_token_num = self.cache_config.max_prefill_token_num
        swap_done = False

        async def __forward(inputs):
            """forward."""
            nonlocal swap_done, swap_in_map, swap_out_map
            if swap_done:
                return await self.model_agent.async_forward(
                    inputs, swap_in_map=dict(), swap_out_map=dict())
            else:
                swap_done = True
                return await self.model_agent.async_forward(
                    inputs, swap_in_map=swap_in_map, swap_out_map=swap_out_map)

        # (benchmark cut: _LogitsGather and __long_context_single_forward, used when
        #  inputs.input_ids.numel() > max_prefill_token_num)

        if inputs.input_ids.numel() <= max_prefill_token_num:
            return await __forward(inputs)

    # (benchmark cut: update_running, _make_infer_outputs)

    @torch.inference_mode()
    async def _async_step_background(
            self, inputs: ModelInputs, swap_in_map: Dict, swap_out_map: Dict,
            history_ids: torch.Tensor, sampling_inputs: SamplingInputs,
            num_appendable_ids: torch.LongTensor,
            num_ignore_eos: torch.LongTensor, output_que: asyncio.Queue):
        """asyc forward task."""

        def __update_inputs(next_token_ids):
            """update inputs."""
            nonlocal history_ids
            inputs.update(next_token_ids)
            if history_ids is not None:
                history_ids = torch.cat([
                    history_ids, next_token_ids[:, None].to(history_ids.device)
                ], 1)
            if sampling_inputs.random_offsets is not None:
                sampling_inputs.random_offsets += 1

        logger.debug('<ForwardTask>: '
                     f'batch_size={inputs.seq_length.size(0)} '
                     f'num_tokens={inputs.input_ids.size(-1)}')
        is_decoding = inputs.is_decoding
        if history_ids is not None:
            history_ids = history_ids.cuda()
        sampling_inputs = sampling_inputs.to_device('cuda')
        num_appendable_ids = num_appendable_ids.cuda()
        num_ignore_eos = num_ignore_eos.cuda()

        loop_count = (1 if not is_decoding else
                      self.scheduler_config.prefill_interval - 1)

        for idx in range(loop_count):
            # inference
            with torch.inference_mode():
                output = await self._async_model_forward(
                    inputs, swap_in_map=swap_in_map, swap_out_map=swap_out_map)
                logits = output['logits']
                logits = logits[0]  # [bs, seq, prob] -> [seq, prob]

                # sampling
                next_token_ids = await self.async_sampling_logits(
                    logits, history_ids, sampling_inputs, inputs,
                    num_ignore_eos > 0)
                num_ignore_eos = num_ignore_eos - 1

                # stopping criteria
                stopped, num_appendable_ids = self._batch_stopping_criteria(
                    next_token_ids, sampling_inputs.stop_words,
                    num_appendable_ids)

            # send output
            stopped = stopped.cpu()
            finish = stopped.all().item() or (idx == loop_count - 1)
            output = (next_token_ids.cpu(), logits, stopped)
            output_que.put_nowait((finish, output))

            if finish:
                break

            # update for next loop
            if is_decoding:
                swap_in_map = dict()
                swap_out_map = dict()
                __update_inputs(next_token_ids)

    async def _async_loop_background(self, in_que: asyncio.Queue,
                                     out_que: asyncio.Queue):
        """async loop background."""

        def __gather_history(seqs: SeqList, sampling_inputs: SamplingInputs):
            """gather history."""
            if sampling_inputs.repetition_penalty is None:
                return None
            batch = len(seqs)
            max_len = max(seq.history_len for seq in seqs)
            pad_id = self.model_config.bos_token_id
            pad_id = 0 if pad_id is None else pad_id
            output = torch.full((batch, max_len), pad_id, dtype=torch.int64)
            for idx, seq in enumerate(seqs):
                h_len = seq.history_len
                if h_len == 0:
                    continue
                h_ids = torch.from_numpy(seq.history_ids)
                output[idx, -h_len:] = h_ids
            return output

        def __get_num_appendable_ids(seqs: SeqList):
            """get num appendable ids."""
            ret = [
                seq.sampling_param.max_new_tokens - seq.num_new_tokens
                for seq in seqs
            ]
            return torch.tensor(ret)

        def __get_num_ignore_eos(seqs: SeqList):
            """get num ignore eos."""
            ret = [
                seq.sampling_param.min_new_tokens - seq.num_new_tokens
                for seq in seqs
            ]
            return torch.tensor(ret)

        while True:
            is_prefill = await in_que.get()
            try:
                prefill_interval = self.scheduler_config.prefill_interval
                schedule_output = self.scheduler.schedule(
                    is_prefill=is_prefill, prealloc_size=prefill_interval)
                running: SeqList = schedule_output.running
                adapters = schedule_output.adapters
                if len(running) == 0:
                    raise NoRunningSeqs()

                # create inputs
                inputs = self.create_model_inputs(running, adapters)
                sampling_inputs = SamplingInputs.from_sampling_params(running)
                history_ids = __gather_history(running, sampling_inputs)
                num_appendable_ids = __get_num_appendable_ids(running)
                num_ignore_eos = __get_num_ignore_eos(running)

                self._running = running
                self._inputs = inputs
                await self._async_step_background(
                    inputs=inputs,
                    swap_in_map=schedule_output.swap_in_map,
                    swap_out_map=schedule_output.swap_out_map,
                    history_ids=history_ids,
                    sampling_inputs=sampling_inputs,
                    num_appendable_ids=num_appendable_ids,
                    num_ignore_eos=num_ignore_eos,
                    output_que=out_que,
                )
            except Exception as e:
                out_que.put_nowait((True, e))
            finally:
                in_que.task_done()

    async def async_loop(self):
        """Main loop of the engine.

        Each engine instance would communicate with the engine by queue.
        """
        in_que = asyncio.Queue()
        out_que = asyncio.Queue()
        loop_background = asyncio.get_event_loop().create_task(
            self._async_loop_background(in_que, out_que),
            name='MainLoopBackground')
        loop_background.add_done_callback(_raise_exception_on_finish)

        async def __step(prefill: bool):
            """step decoding."""
            in_que.put_nowait(prefill)
            finish = False
            while not finish:
                finish, out = await out_que.get()
                try:
                    if isinstance(out, Exception):
                        raise out
                    # (benchmark cut: _make_infer_outputs and responses)
                except NoRunningSeqs:
                    break
                except Exception as e:
                    raise e
                finally:
                    out_que.task_done()

        while True:
            if not self.scheduler.has_unfinished():
                await asyncio.sleep(0.01)
                continue

            # prefill
            if self.scheduler.has_waiting():
                await __step(True)

            # decoding
            if self.scheduler.has_running():
                await __step(False)
