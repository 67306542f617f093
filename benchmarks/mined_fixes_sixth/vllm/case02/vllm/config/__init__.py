# SPDX-License-Identifier: Apache-2.0
# (benchmark stub: VllmConfig and its sub-configs are plain containers here)


class VllmConfig:
    def __init__(
        self,
        model_config=None,
        cache_config=None,
        parallel_config=None,
        scheduler_config=None,
        speculative_config=None,
        device_config=None,
        compilation_config=None,
    ):
        self.model_config = model_config
        self.cache_config = cache_config
        self.parallel_config = parallel_config
        self.scheduler_config = scheduler_config
        self.speculative_config = speculative_config
        self.device_config = device_config
        self.compilation_config = compilation_config
