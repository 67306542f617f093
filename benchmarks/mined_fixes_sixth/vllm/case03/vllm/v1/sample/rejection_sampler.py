# SPDX-License-Identifier: Apache-2.0
import torch
import torch.nn as nn

PLACEHOLDER_TOKEN_ID: int = -1

# (benchmark stub: greedy acceptance written with torch ops in place of the
# Triton rejection-sampling kernels)


class RejectionSampler(nn.Module):

    def forward(self, metadata, draft_probs, target_logits, bonus_token_ids,
                sampling_metadata) -> torch.Tensor:
        batch_size = len(metadata.num_draft_tokens)
        max_spec_len = metadata.max_spec_len
        output_token_ids = torch.full(
            (batch_size, max_spec_len + 1),
            PLACEHOLDER_TOKEN_ID,
            dtype=torch.int32,  # Consistent with SamplerOutput.sampled_token_ids.
            device=target_logits.device,
        )
        target_argmax = target_logits.argmax(dim=-1).to(torch.int32)
        start = 0
        for i, n in enumerate(metadata.num_draft_tokens):
            output_token_ids[i, :n] = target_argmax[start:start + n]
            output_token_ids[i, n] = bonus_token_ids[i, 0]
            start += n
        return output_token_ids

    @staticmethod
    def parse_output(
        output_token_ids: torch.Tensor,
        vocab_size: int,
    ) -> list[list[int]]:
        """Parse the output of the rejection sampler.

        Args:
            output_token_ids: The sampled token IDs in shape
                [batch_size, max_spec_len + 1]. The rejected tokens are
                replaced with `PLACEHOLDER_TOKEN_ID` by the rejection sampler
                and will be filtered out in this function.
            vocab_size: The size of the vocabulary.

        Returns:
            A list of lists of token IDs.
        """
        output_token_ids_np = output_token_ids.cpu().numpy()
        # Create mask for valid tokens.
        valid_mask = ((output_token_ids_np != PLACEHOLDER_TOKEN_ID) &
                      (output_token_ids_np < vocab_size))
        outputs = [
            row[valid_mask[i]].tolist()
            for i, row in enumerate(output_token_ids_np)
        ]
        return outputs
