# Copyright (c) Meta Platforms, Inc. and affiliates.
# All rights reserved.
#
# This source code is licensed under the BSD-style license found in the
# LICENSE file in the root directory of this source tree.

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace

import spmd_types as spmd
import torch

from torchtitan.components.dataloader import DataloaderExhaustedError
from torchtitan.config import TORCH_DTYPE_MAP
from torchtitan.distributed import utils as dist_utils
from torchtitan.models.flux.configs import FluxEncoderConfig, Inference
from torchtitan.models.flux.model.autoencoder import load_ae
from torchtitan.models.flux.model.model import FluxModel
from torchtitan.models.flux.parallelize import parallelize_encoders
from torchtitan.models.flux.sharding import annotate_flux_forward_inputs
from torchtitan.models.flux.tokenizer import FluxTokenizerContainer
from torchtitan.models.flux.utils import (
    create_position_encoding_for_latents,
    IMAGE_LATENT_SIZE_RATIO,
    pack_latents,
    PATCH_HEIGHT,
    PATCH_WIDTH,
    preprocess_data,
)
from torchtitan.trainer import Trainer


class FluxTrainer(Trainer):
    @dataclass(kw_only=True, slots=True)
    class Config(Trainer.Config):
        # Overwrite parent class tokenizer
        tokenizer: FluxTokenizerContainer.Config = (  # pyrefly: ignore [bad-override]
            field(default_factory=FluxTokenizerContainer.Config)
        )
        encoder: FluxEncoderConfig = field(default_factory=FluxEncoderConfig)
        """Configuration for Flux encoders (T5 text encoder, CLIP text encoder, and autoencoder)."""
        inference: Inference = field(default_factory=Inference)

    def __init__(self, config: Config):
        # Compute image token count: autoencoder downscales the image,
        # then pack_latents tiles the latent into 2×2 patches.
        # pyrefly: ignore [missing-attribute]
        img_size = config.dataloader.img_size
        ae_downscale = IMAGE_LATENT_SIZE_RATIO
        latent_side_width = img_size // ae_downscale // PATCH_WIDTH
        latent_side_height = img_size // ae_downscale // PATCH_HEIGHT
        seq_len_img = latent_side_width * latent_side_height

        seq_len_txt = config.tokenizer.max_t5_encoding_len
        config.training.seq_len = seq_len_img + seq_len_txt

        super().__init__(config)
        # (benchmark cut: seed setup, encoders and preprocessing state)

    # (benchmark cut: batch_generator)
    def forward_backward_step(
        self,
        *,
        input_dict: dict[str, torch.Tensor] | list[dict[str, torch.Tensor]],
        labels: torch.Tensor | list[torch.Tensor],
        global_valid_tokens: float | None = None,
    ) -> torch.Tensor:
        """
        Perform a single forward and backward pass through the model.

        Args:
            input_dict: Dictionary containing input data including prompts and other metadata
            labels: Target tensor containing the ground truth image data
            global_valid_tokens: Optional float tracking the total number of
                valid tokens across all processes.
                This field is a placeholder for now as we rescale the loss within forward_backward_step for FLUX.

        Returns:
            torch.Tensor: The computed loss value for this training step
        """

        assert (
            global_valid_tokens is None
        ), "FLUX model don't need to rescale loss by number of global valid tokens"
        assert isinstance(input_dict, dict)
        assert isinstance(labels, torch.Tensor)

        # generate t5 and clip embeddings
        input_dict["image"] = labels
        input_dict = preprocess_data(
            device=self.device,
            dtype=self._dtype,
            autoencoder=self.autoencoder,
            clip_encoder=self.clip_encoder,
            t5_encoder=self.t5_encoder,
            batch=input_dict,
        )
        labels = input_dict["img_encodings"]

        # rewrite the global_valid_tokens because the `labels` are reset after image encoder.
        local_valid_tokens = torch.tensor(
            labels.numel(), dtype=torch.float32, device=self.device
        )

        if self.parallel_dims.dp_enabled:
            batch_mesh = self.parallel_dims.get_mesh("batch")
            global_valid_tokens = dist_utils.dist_sum(local_valid_tokens, batch_mesh)
        else:
            global_valid_tokens = float(local_valid_tokens.item())  # SYNC (pre-fix, #4099)

        # Keep these variables local to shorten the code as these are
        # the major variables that are used in the training loop.
        # explicitly convert flux model to be Bfloat16 no matter FSDP is applied or not
        model = self.model_parts[0]

        # image in latent space transformed by self.auto_encoder
        clip_encodings = input_dict["clip_encodings"]
        t5_encodings = input_dict["t5_encodings"]

        bsz = labels.shape[0]

        with torch.no_grad(), torch.device(self.device):
            noise = torch.randn_like(labels)
            timesteps = torch.rand((bsz,))
            sigmas = timesteps.view(-1, 1, 1, 1)
            latents = (1 - sigmas) * labels + sigmas * noise

        bsz, _, latent_height, latent_width = latents.shape

        POSITION_DIM = 3  # constant for Flux flow model
        with torch.no_grad(), torch.device(self.device):
            # Create positional encodings
            latent_pos_enc = create_position_encoding_for_latents(
                bsz, latent_height, latent_width, POSITION_DIM
            )
            text_pos_enc = torch.zeros(bsz, t5_encodings.shape[1], POSITION_DIM)

            # Patchify: Convert latent into a sequence of patches
            latents = pack_latents(latents)
            target = pack_latents(noise - labels)

        # Apply CP sharding if enabled
        if self.parallel_dims.cp_enabled:
            from torchtitan.distributed.context_parallel import cp_shard

            (
                latents,
                latent_pos_enc,
                t5_encodings,
                text_pos_enc,
                target,
            ), _ = cp_shard(
                self.parallel_dims.get_mesh("cp"),
                (latents, latent_pos_enc, t5_encodings, text_pos_enc, target),
                None,  # No attention masks for Flux
                load_balancer_type=None,
            )

        # Accumulate after CP sharding so the count reflects the actual
        # unique tokens this rank processes (not the full pre-split sequence).
        self.ntokens_seen += bsz * self.config.training.seq_len // self.parallel_dims.cp

        with self.train_context():
            annotate_flux_forward_inputs(
                latents=latents,
                latent_pos_enc=latent_pos_enc,
                t5_encodings=t5_encodings,
                text_pos_enc=text_pos_enc,
                target=target,
                clip_encodings=clip_encodings,
                timesteps=timesteps,
            )
            latent_noise_pred = model(
                img=latents,
                img_ids=latent_pos_enc,
                txt=t5_encodings,
                txt_ids=text_pos_enc,
                y=clip_encodings,
                timesteps=timesteps,
            )

            # Scale loss as we used SUM reduction for mse loss function
            loss, _ = self.loss_fn(latent_noise_pred, target, global_valid_tokens)
            # latent_noise_pred.shape=(bs, seq_len, vocab_size)
            # need to free to before bwd to avoid peaking memory
            # pyrefly: ignore[unsupported-delete]
            del (latent_noise_pred, noise, target)
            with spmd.no_typecheck():
                loss.backward()

        return loss

    def train_step(
        self, data_iterator: Iterable[tuple[dict[str, torch.Tensor], torch.Tensor]]
    ):
        self.optimizers.zero_grad()
        # Save the current step learning rate for logging
        lr = self.lr_schedulers.schedulers[0].get_last_lr()[0]

        # Keep these variables local to shorten the code as these are
        # the major variables that are used in the training loop.
        parallel_dims = self.parallel_dims

        if self.gradient_accumulation_steps > 1:
            raise ValueError("FLUX doesn't support gradient accumulation for now.")

        # pyrefly: ignore [no-matching-overload]
        input_dict, labels = next(data_iterator)

        loss = self.forward_backward_step(input_dict=input_dict, labels=labels)
        # (benchmark cut: clip_grad_norm_, optimizer step and metrics logging)
