"""Two PyTorch models written here in plain ``torch.nn``, and the script that exports them to
ONNX with random weights: torchvision's ResNet-50 architecture and a BERT-style encoder.

Nothing here is committed as ONNX; the tests make the files at test time::

    python -m tests.onnx.pytorch_models resnet50 resnet50.onnx
    python -m tests.onnx.pytorch_models bert bert.onnx --layers 12 --hidden 768

Torch is imported in this module alone (it is a heavy, optional dependency of the tests).
"""

from __future__ import annotations

import argparse
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

# The TorchScript exporter (``dynamo=False``) needs no onnxscript; opset 17 is the newest it
# writes LayerNormalization for and the one most deployed models were exported at.
OPSET = 17


# -- ResNet-50 (torchvision's architecture, v1.5: the stride sits on the 3x3 convolution) ------

class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, in_channels: int, width: int, stride: int) -> None:
        super().__init__()
        out_channels = width * self.expansion
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet50(nn.Module):
    """Bottleneck blocks [3, 4, 6, 3], widths 64 to 2048, 1000 classes."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        stages = []
        in_channels = 64
        for blocks, width, stride in [(3, 64, 1), (4, 128, 2), (6, 256, 2), (3, 512, 2)]:
            layers = []
            for i in range(blocks):
                layers.append(Bottleneck(in_channels, width, stride if i == 0 else 1))
                in_channels = width * Bottleneck.expansion
            stages.append(nn.Sequential(*layers))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * Bottleneck.expansion, num_classes)
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


# -- BERT-style encoder ------------------------------------------------------------------------

@dataclass(frozen=True)
class BertConfig:
    vocab_size: int = 30522
    hidden: int = 768
    layers: int = 12
    heads: int = 12
    max_positions: int = 512
    type_vocab_size: int = 2

    @property
    def intermediate(self) -> int:
        return 4 * self.hidden


class SelfAttention(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.heads = config.heads
        self.head_size = config.hidden // config.heads
        self.query = nn.Linear(config.hidden, config.hidden)
        self.key = nn.Linear(config.hidden, config.hidden)
        self.value = nn.Linear(config.hidden, config.hidden)
        self.output = nn.Linear(config.hidden, config.hidden)

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        batch, seq, _ = x.shape
        return x.view(batch, seq, self.heads, self.head_size).transpose(1, 2)

    def forward(self, x: torch.Tensor, mask_bias: torch.Tensor) -> torch.Tensor:
        q = self._split_heads(self.query(x))
        k = self._split_heads(self.key(x))
        v = self._split_heads(self.value(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head_size) + mask_bias
        context = torch.matmul(torch.softmax(scores, dim=-1), v)
        batch, _, seq, _ = context.shape
        return self.output(context.transpose(1, 2).reshape(batch, seq, -1))


class EncoderLayer(nn.Module):
    """Post-LayerNorm, as in BERT: x = LN(x + attention(x)); x = LN(x + FFN(x))."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.attention = SelfAttention(config)
        self.attention_norm = nn.LayerNorm(config.hidden, eps=1e-12)
        self.intermediate = nn.Linear(config.hidden, config.intermediate)
        self.gelu = nn.GELU()  # the exact (erf) form, as BERT uses
        self.output = nn.Linear(config.intermediate, config.hidden)
        self.output_norm = nn.LayerNorm(config.hidden, eps=1e-12)

    def forward(self, x: torch.Tensor, mask_bias: torch.Tensor) -> torch.Tensor:
        x = self.attention_norm(x + self.attention(x, mask_bias))
        return self.output_norm(x + self.output(self.gelu(self.intermediate(x))))


class BertEncoder(nn.Module):
    """Token, position and segment embeddings, LayerNorm, ``config.layers`` encoder layers.

    Inputs ``input_ids`` and ``attention_mask`` are (batch, sequence) int64; a 0 in the mask
    hides that token from every query. Output: the last hidden state (batch, sequence, hidden).
    """

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden)
        self.position_embeddings = nn.Embedding(config.max_positions, config.hidden)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden)
        self.embedding_norm = nn.LayerNorm(config.hidden, eps=1e-12)
        self.layers = nn.ModuleList(EncoderLayer(config) for _ in range(config.layers))
        for m in self.modules():  # BERT's initialisation
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device).unsqueeze(0)
        x = (self.word_embeddings(input_ids) + self.position_embeddings(positions)
             + self.token_type_embeddings(torch.zeros_like(input_ids)))
        x = self.embedding_norm(x)
        # (batch, 1, 1, sequence): 0 where attended, -10000 where masked, added to the scores
        mask_bias = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * -10000.0
        for layer in self.layers:
            x = layer(x, mask_bias)
        return x


# -- export ------------------------------------------------------------------------------------

def _calibrate_batch_norm(model: nn.Module, images: torch.Tensor) -> None:
    """Set every BatchNorm's running statistics to those of ``images``, so that random weights
    give activations of a trained network's scale instead of growing block after block."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # a cumulative average: after one batch, that batch's statistics
    model.train()
    with torch.no_grad():
        model(images)
    model.eval()


def _export(model: nn.Module, args: tuple[torch.Tensor, ...], path: Path, input_names: list[str],
            output_names: list[str], dynamic_axes: dict[str, dict[int, str]] | None) -> None:
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated in favour of the dynamo one, which needs
        # onnxscript; it says so on every call, and again for its logging setup.
        warnings.filterwarnings("ignore", "You are using the legacy TorchScript-based ONNX",
                                DeprecationWarning)
        warnings.filterwarnings("ignore", "The feature will be removed", DeprecationWarning,
                                module=r"torch\.onnx\.")
        torch.onnx.export(model, args, str(path), input_names=input_names,
                          output_names=output_names, dynamic_axes=dynamic_axes,
                          opset_version=OPSET, dynamo=False)


def export_resnet50(path: Path, seed: int = 0) -> None:
    """Write ResNet-50 with random weights, input ``image`` (1, 3, 224, 224), output
    ``logits`` (1, 1000), to ``path``."""
    torch.manual_seed(seed)
    model = ResNet50()
    _calibrate_batch_norm(model, torch.randn(2, 3, 224, 224))
    _export(model, (torch.randn(1, 3, 224, 224),), path, ["image"], ["logits"], None)


def export_bert(path: Path, config: BertConfig, *, batch: int = 2, sequence: int = 16,
                dynamic: bool = False, seed: int = 0) -> None:
    """Write the BERT-style encoder with random weights to ``path``: inputs ``input_ids`` and
    ``attention_mask``, output ``hidden_state``, of (``batch``, ``sequence``) tokens, or with
    both axes dynamic when ``dynamic``."""
    torch.manual_seed(seed)
    model = BertEncoder(config).eval()
    ids = torch.randint(0, config.vocab_size, (batch, sequence))
    mask = torch.ones(batch, sequence, dtype=torch.int64)
    axes = {0: "batch", 1: "sequence"}
    names = ["input_ids", "attention_mask", "hidden_state"]
    _export(model, (ids, mask), path, names[:2], names[2:],
            {name: axes for name in names} if dynamic else None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", choices=["resnet50", "bert"])
    parser.add_argument("path", type=Path)
    parser.add_argument("--layers", type=int, default=BertConfig.layers)
    parser.add_argument("--hidden", type=int, default=BertConfig.hidden)
    parser.add_argument("--heads", type=int, default=BertConfig.heads)
    parser.add_argument("--dynamic", action="store_true", help="dynamic batch and sequence")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.model == "resnet50":
        export_resnet50(args.path, args.seed)
    else:
        config = BertConfig(hidden=args.hidden, layers=args.layers, heads=args.heads)
        export_bert(args.path, config, dynamic=args.dynamic, seed=args.seed)


if __name__ == "__main__":
    main()
