from typing import Optional

import numpy as np
import torch

from vllm.v1.sample.metadata import SamplingMetadata


class InputBatch:

    def __init__(self, max_num_reqs: int, max_model_len: int, device: torch.device,
                 pin_memory: bool, vocab_size: int):
        self.max_num_reqs = max_num_reqs
        self.device = device
        self.pin_memory = pin_memory
        self.vocab_size = vocab_size
        self._req_ids: list[Optional[str]] = []

        self.token_ids_cpu_tensor = torch.zeros(
            (max_num_reqs, max_model_len), device="cpu", dtype=torch.int32,
            pin_memory=False)
        self.token_ids_cpu = self.token_ids_cpu_tensor.numpy()
        self.num_prompt_tokens = np.zeros(max_num_reqs, dtype=np.int32)

        self.temperature = torch.empty((max_num_reqs, ), dtype=torch.float32,
                                       device=device)
        self.temperature_cpu_tensor = torch.empty((max_num_reqs, ),
                                                  dtype=torch.float32,
                                                  device="cpu",
                                                  pin_memory=pin_memory)
        self.frequency_penalties = torch.empty((max_num_reqs, ),
                                               dtype=torch.float,
                                               device=device)
        self.presence_penalties = torch.empty((max_num_reqs, ),
                                              dtype=torch.float,
                                              device=device)
        self.repetition_penalties = torch.empty((max_num_reqs, ),
                                                dtype=torch.float,
                                                device=device)
        self.generators: dict[int, torch.Generator] = {}
        self.bad_words_token_ids: dict[int, list[list[int]]] = {}
        self.logprob_token_ids: dict[int, list[int]] = {}
        self.req_output_token_ids: list[Optional[list[int]]] = []
        self.sampling_metadata = self._make_sampling_metadata()

    @property
    def req_ids(self) -> list[str]:
        return self._req_ids  # type: ignore

    @property
    def num_reqs(self) -> int:
        return len(self._req_ids)

    def _make_sampling_metadata(self) -> SamplingMetadata:
        num_reqs = self.num_reqs
        temperature = self.temperature[:num_reqs]
        prompt_token_ids = self._make_prompt_token_ids_tensor()
        return SamplingMetadata(
            temperature=temperature,
            all_greedy=False,
            all_random=False,
            top_p=None,
            top_k=None,
            generators=self.generators,
            max_num_logprobs=None,
            no_penalties=False,
            prompt_token_ids=prompt_token_ids,
            frequency_penalties=self.frequency_penalties[:num_reqs],
            presence_penalties=self.presence_penalties[:num_reqs],
            repetition_penalties=self.repetition_penalties[:num_reqs],
            output_token_ids=self.req_output_token_ids,
            bad_words_token_ids=self.bad_words_token_ids,
            logprob_token_ids=self.logprob_token_ids,
        )

    def _make_prompt_token_ids_tensor(self) -> torch.Tensor:
        max_prompt_len = self.num_prompt_tokens[:self.num_reqs].max()
        prompt_token_ids_cpu_tensor = torch.empty(
            (self.num_reqs, max_prompt_len),
            device="cpu",
            dtype=torch.int64,
            pin_memory=self.pin_memory,
        )
        prompt_token_ids = prompt_token_ids_cpu_tensor.numpy()
        prompt_token_ids[:] = self.token_ids_cpu[:self.num_reqs, :max_prompt_len]
        for i in range(self.num_reqs):
            prompt_token_ids[i, self.num_prompt_tokens[i]:] = self.vocab_size
        return prompt_token_ids_cpu_tensor.to(device=self.device,
                                              non_blocking=True)
