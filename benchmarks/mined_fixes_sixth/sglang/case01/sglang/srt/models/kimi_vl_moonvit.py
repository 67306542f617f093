# (benchmark cut: only MLP2 is used here, reduced to two plain linear layers)
from torch import nn


class MLP2(nn.Module):
    def __init__(self, dims, activation, bias=True, quant_config=None, prefix=""):
        super().__init__()
        self.fc0 = nn.Linear(dims[0], dims[1], bias=bias)
        self.fc1 = nn.Linear(dims[1], dims[2], bias=bias)
        self.activation = activation

    def forward(self, x):
        return self.fc1(self.activation(self.fc0(x)))
