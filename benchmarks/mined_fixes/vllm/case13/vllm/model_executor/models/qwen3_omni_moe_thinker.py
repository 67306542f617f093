"""Inference-only Qwen3-Omni-Moe thinker (audio path)."""
import torch
import torch.nn as nn
import torch.nn.functional as F

from vllm.model_executor.models.qwen2_5_omni_thinker import (
    Qwen2_5OmniAudioFeatureInputs,
    Qwen2_5OmniThinkerMultiModalProcessor,
)


def _get_feat_extract_output_lengths(input_lengths: torch.Tensor):
    input_lengths_leave = input_lengths % 100
    feat_lengths = (input_lengths_leave - 1) // 2 + 1
    output_lengths = (((feat_lengths - 1) // 2 + 1 - 1) // 2 + 1 +
                      (input_lengths // 100) * 13)
    return feat_lengths, output_lengths


class Qwen3OmniMoeAudioEncoder(nn.Module):

    def __init__(self, config, prefix: str = ""):
        super().__init__()
        self.n_window = config.n_window
        self.conv_chunksize = config.conv_chunksize
        self.conv2d1 = nn.Conv2d(1, config.downsample_hidden_size, 3, 2,
                                 padding=1)
        self.conv2d2 = nn.Conv2d(config.downsample_hidden_size,
                                 config.downsample_hidden_size, 3, 2,
                                 padding=1)
        self.conv_out = nn.Linear(config.downsample_hidden_size * 32,
                                  config.d_model, bias=False)

    @property
    def dtype(self) -> torch.dtype:
        return self.conv2d1.weight.dtype

    def forward(
        self,
        input_features: torch.Tensor,
        feature_lens: torch.Tensor,
        aftercnn_lens: torch.Tensor,
    ):
        # Compute chunk information
        chunk_num = torch.ceil(feature_lens / (self.n_window * 2)).long()

        chunk_lengths = torch.full(
            (chunk_num.sum(), ),  # SYNC A (pre-fix, #43107; reconstructed)
            self.n_window * 2,
            dtype=torch.long,
            device=feature_lens.device,
        )
        tail_chunk_index = F.pad(chunk_num, (1, 0), value=-1).cumsum(0)[1:]
        chunk_lengths[tail_chunk_index] = feature_lens % (self.n_window * 2)
        chunk_lengths[chunk_lengths == 0] = self.n_window * 2  # (not a sync: CUDA mask + Python scalar)

        chunk_list = input_features.T.split(chunk_lengths.tolist(), dim=0)  # SYNC B (pre-fix, #43107; reconstructed)
        padded_feature = nn.utils.rnn.pad_sequence(
            chunk_list, batch_first=True).transpose(1, 2)
        feature_lens_after_cnn, _ = _get_feat_extract_output_lengths(
            chunk_lengths)
        padded_mask_after_cnn = nn.utils.rnn.pad_sequence(
            [
                torch.ones(length, dtype=torch.bool, device=padded_feature.device)  # SYNC C (pre-fix, #43107; reconstructed)
                for length in feature_lens_after_cnn
            ],
            batch_first=True,
        )
        padded_feature = padded_feature.unsqueeze(1)
        # Split to chunk to avoid OOM during convolution
        padded_embeds = []
        for chunk in padded_feature.split(self.conv_chunksize, dim=0):
            padded_embed = F.gelu(self.conv2d1(chunk))
            padded_embed = F.gelu(self.conv2d2(padded_embed))
            padded_embeds.append(padded_embed)
        padded_embed = torch.cat(padded_embeds, dim=0)
        b, c, f, t = padded_embed.size()
        padded_embed = self.conv_out(
            padded_embed.permute(0, 3, 1, 2).contiguous().view(b, t, c * f))
        hidden_states = padded_embed[padded_mask_after_cnn]
        return hidden_states


class Qwen3OmniMoeThinkerMultiModalProcessor(
        Qwen2_5OmniThinkerMultiModalProcessor):
    pass


class Qwen3OmniMoeThinkerForConditionalGeneration(nn.Module):

    def __init__(self, *, vllm_config, prefix: str = ""):
        super().__init__()
        thinker_config = vllm_config.model_config.hf_config.thinker_config
        self.audio_tower = Qwen3OmniMoeAudioEncoder(
            thinker_config.audio_config, prefix="audio_tower")

    def _parse_and_validate_audio_input(
            self, **kwargs: object) -> Qwen2_5OmniAudioFeatureInputs | None:
        input_audio_features = kwargs.pop("input_audio_features", None)
        audio_feature_lengths = kwargs.pop("audio_feature_lengths", None)
        feature_attention_mask = kwargs.pop("feature_attention_mask", None)
        if input_audio_features is None:
            return None

        return Qwen2_5OmniAudioFeatureInputs(
            type="audio_features",
            input_features=input_audio_features,
            audio_feature_lengths=audio_feature_lengths,
            feature_attention_mask=feature_attention_mask,
        )

    def _process_audio_input(
        self,
        audio_input: Qwen2_5OmniAudioFeatureInputs,
        audio_hashes: list[str] | None = None,
        cached_audio_features: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, ...]:
        input_features = audio_input["input_features"]
        audio_feature_lengths = audio_input["audio_feature_lengths"]

        audio_feat_lengths, audio_output_lengths = (
            _get_feat_extract_output_lengths(audio_feature_lengths))

        audio_features = self.audio_tower(
            input_features.to(self.audio_tower.dtype),
            feature_lens=audio_feature_lengths,
            aftercnn_lens=audio_feat_lengths,
        )
        return audio_features.split(audio_output_lengths.tolist())

    def embed_multimodal(self, **kwargs: object):
        audio_input = self._parse_and_validate_audio_input(**kwargs)
        if audio_input is None:
            return []
        return self._process_audio_input(audio_input)
