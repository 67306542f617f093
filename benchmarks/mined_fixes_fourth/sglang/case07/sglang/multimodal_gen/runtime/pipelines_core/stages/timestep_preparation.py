from sglang.multimodal_gen.runtime.distributed import get_local_torch_device
from sglang.multimodal_gen.runtime.pipelines_core.schedule_batch import Req
from sglang.multimodal_gen.runtime.server_args import ServerArgs


class TimestepPreparationStage:
    def __init__(self, scheduler):
        self.scheduler = scheduler

    def forward(
        self,
        batch: Req,
        server_args: ServerArgs,
    ) -> Req:
        """
        Prepare timesteps for the diffusion process.
        """
        if batch.scheduler is not None and batch.timesteps is not None:
            return batch

        # get_or_create_request_scheduler(batch, self.scheduler) in the real code.
        scheduler = self.scheduler
        device = get_local_torch_device()
        num_inference_steps = batch.num_inference_steps

        # Custom timesteps / sigmas branches are cut.
        scheduler.set_timesteps(num_inference_steps, device=device)
        timesteps = scheduler.timesteps

        # Update batch with prepared timesteps
        batch.timesteps = timesteps
        batch.scheduler = scheduler
        return batch
