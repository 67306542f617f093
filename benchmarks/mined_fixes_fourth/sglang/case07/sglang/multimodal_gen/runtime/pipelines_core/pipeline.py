from sglang.multimodal_gen.runtime.models.schedulers.scheduling_unipc_multistep import (
    UniPCMultistepScheduler,
)
from sglang.multimodal_gen.runtime.pipelines_core.schedule_batch import Req
from sglang.multimodal_gen.runtime.pipelines_core.stages.denoising import (
    DenoisingStage,
)
from sglang.multimodal_gen.runtime.pipelines_core.stages.timestep_preparation import (
    TimestepPreparationStage,
)
from sglang.multimodal_gen.runtime.server_args import ServerArgs


class WanPipeline:
    """Reduced: the Wan pipelines use UniPCMultistepScheduler."""

    def __init__(self, transformer, server_args: ServerArgs):
        self.server_args = server_args
        scheduler = UniPCMultistepScheduler(flow_shift=5.0)
        self.stages = [
            TimestepPreparationStage(scheduler),
            DenoisingStage(transformer),
        ]

    def forward(self, batch: Req) -> Req:
        for stage in self.stages:
            batch = stage.forward(batch, self.server_args)
        return batch
