"""Drive the realistic fixtures for `sync-lint trace`: a few steps of each, on the GPU.

    sync-lint trace --include '*/fixtures/realistic/*' -- python benchmarks/trace/drive_realistic.py

The traced lines that block are joined with the static findings on the same
files: the first measurement of the static rules against runtime truth.
"""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "fixtures" / "realistic"))

import conv_metadata_builder  # noqa: E402
import sampler_step  # noqa: E402
import training_loop  # noqa: E402

device = torch.device("cuda")
torch.manual_seed(0)


def metadata_steps(steps: int) -> None:
    builder = conv_metadata_builder.ConvMetadataBuilder(max_reqs=64, device=device)
    for _ in range(steps):
        query_lens = torch.tensor([1, 1, 5, 9], dtype=torch.int32)
        starts = torch.zeros(5, dtype=torch.int32)
        starts[1:] = torch.cumsum(query_lens, 0)
        seq_lens = query_lens + torch.tensor([10, 0, 3, 0], dtype=torch.int32)
        slots = torch.arange(8, dtype=torch.int32).reshape(4, 2)
        batch = conv_metadata_builder.BatchInfo(starts.to(device), seq_lens.to(device), slots.to(device), 4, device)
        builder.build(batch)


def sampler_steps(steps: int) -> None:
    vocab = 32
    for _ in range(steps):
        logits = torch.randn(4, vocab, device=device)
        out_ids = torch.randint(0, vocab, (16,), device=device)
        sampler_step.apply_penalties(logits[0], out_ids, vocab, 1.2)
        sampler_step.sample(logits, torch.ones(4, device=device), 5, device)
        sampler_step.gather_lengths(torch.tensor([2, 3, 1]), device)


def training_steps(steps: int) -> None:
    model = torch.nn.Linear(8, 4)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for step in range(steps):
        batch = {"inputs": torch.randn(16, 8), "targets": torch.randint(0, 4, (16,))}
        training_loop.train_step(model, batch, optimizer, device, step, log_every=2)
    loader = [{"inputs": torch.randn(16, 8)} for _ in range(2)]
    training_loop.evaluate(model, loader, device)


if __name__ == "__main__":
    metadata_steps(3)
    sampler_steps(3)
    training_steps(3)
