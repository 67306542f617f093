import torch

from sglang.multimodal_gen.runtime.pipelines_core.schedule_batch import Req
from sglang.multimodal_gen.runtime.server_args import ServerArgs


class DenoisingStage:
    def __init__(self, transformer):
        self.transformer = transformer

    def forward(self, batch: Req, server_args: ServerArgs) -> Req:
        latents = batch.latents
        scheduler = batch.scheduler
        # CFG, sequence parallelism, caching and the per-step context are cut.
        for i, t in enumerate(batch.timesteps):
            t_device = t
            latent_model_input = latents
            timestep = t_device.expand(latent_model_input.shape[0])
            noise_pred = self.transformer(latent_model_input, timestep)

            # 5. Advance the scheduler state with the predicted noise.
            latents = scheduler.step(
                model_output=noise_pred,
                timestep=t_device,
                sample=latents,
                return_dict=False,
            )[0]
        batch.latents = latents
        return batch
