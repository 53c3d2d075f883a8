"""Convolutions: Conv and ConvTranspose through convolution_nd / deconvolution_nd layers."""

from __future__ import annotations

import engine as trt
from engine.onnx.compose import elementwise, rank, reshape, squeeze, unsqueeze
from engine.onnx.context import ImportContext, Node, output_of
from engine.onnx.errors import ErrorCode
from engine.onnx.registry import importer


def _auto_pad(node: Node, layer, spatial: int) -> None:  # noqa: ANN001
    """Apply ONNX's auto_pad/pads to ``layer`` (a convolution, deconvolution or pooling)."""
    auto = node.attr("auto_pad", "NOTSET")
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        layer.padding_mode = trt.PaddingMode.SAME_UPPER if auto == "SAME_UPPER" \
            else trt.PaddingMode.SAME_LOWER
        return
    if auto not in ("NOTSET", "VALID"):
        node.fail(ErrorCode.UNSUPPORTED_NODE_ATTR, f"auto_pad '{auto}'")
    pads = list(node.attr("pads", [0] * 2 * spatial)) if auto == "NOTSET" else [0] * 2 * spatial
    layer.pre_padding = trt.Dims(pads[:spatial])
    layer.post_padding = trt.Dims(pads[spatial:])


def _as_2d(ctx: ImportContext, x):  # noqa: ANN001, ANN202
    """1-D convolutions run as 2-D ones with a width of 1."""
    return unsqueeze(ctx, x, [rank(x)])


@importer("Conv", since=1)
def conv(ctx: ImportContext, node: Node):
    return [convolution(ctx, node, node.require(0), node.require(1), node.input(2))]


def convolution(ctx: ImportContext, node: Node, x, w, b):  # noqa: ANN001, ANN201
    """The convolution of ``x`` by ``w`` (+ ``b``) with ``node``'s attributes (kernel_shape,
    strides, dilations, pads or auto_pad, group): Conv's body, shared with the quantized
    convolutions that compute their operands first."""
    spatial = rank(x) - 2
    one_d = spatial == 1
    kernel = list(node.attr("kernel_shape") or tuple(w.shape)[2:])
    strides = list(node.attr("strides", [1] * spatial))
    dilations = list(node.attr("dilations", [1] * spatial))
    weights, bias = ctx.value(w), ctx.value(b)
    out_maps = int(w.shape[0])
    if one_d:
        x = _as_2d(ctx, x)
        kernel, strides, dilations = kernel + [1], strides + [1], dilations + [1]
        if weights is not None:
            weights = weights[..., None]
        else:
            w = _as_2d(ctx, w)
    args = ctx.weights(weights) if weights is not None else trt.Weights(trt.DataType(w.dtype))
    layer = ctx.network.add_convolution_nd(
        x, out_maps, trt.Dims(kernel), args,
        ctx.weights(bias) if bias is not None else trt.Weights(trt.DataType(x.dtype)))
    if weights is None:
        layer.set_input(1, w)
    if b is not None and bias is None:
        layer.set_input(2, b)
    layer.stride_nd = trt.Dims(strides)
    layer.dilation_nd = trt.Dims(dilations)
    layer.num_groups = int(node.attr("group", 1))
    _auto_pad(node, layer, spatial)
    if one_d and layer.padding_mode not in (trt.PaddingMode.SAME_UPPER,
                                            trt.PaddingMode.SAME_LOWER):
        layer.pre_padding = trt.Dims(list(layer.pre_padding) + [0])
        layer.post_padding = trt.Dims(list(layer.post_padding) + [0])
    out = output_of(layer)
    return squeeze(ctx, out, [rank(out) - 1]) if one_d else out


@importer("ConvTranspose", since=1)
def conv_transpose(ctx: ImportContext, node: Node):
    x, w, b = node.require(0), node.require(1), node.input(2)
    spatial = rank(x) - 2
    group = int(node.attr("group", 1))
    kernel = list(node.attr("kernel_shape") or tuple(w.shape)[2:])
    strides = list(node.attr("strides", [1] * spatial))
    dilations = list(node.attr("dilations", [1] * spatial))
    weights, bias = ctx.value(w), ctx.value(b)
    if weights is None:
        node.fail(ErrorCode.UNSUPPORTED_NODE_DYNAMIC, "ConvTranspose needs constant weights",
                  tensor=node.input_names[1])
    out_maps = int(w.shape[1]) * group
    in_dims = list(x.shape)[2:]
    output_padding = list(node.attr("output_padding", [0] * spatial))
    pads = list(node.attr("pads", [0] * 2 * spatial))
    output_shape = node.attr("output_shape")
    auto = node.attr("auto_pad", "NOTSET")
    if output_shape is not None or auto in ("SAME_UPPER", "SAME_LOWER"):
        if any(d < 0 for d in in_dims):
            node.fail(ErrorCode.UNSUPPORTED_NODE_DYNAMIC,
                      "output_shape/auto_pad need static spatial dims")
        target = list(output_shape)[-spatial:] if output_shape is not None else \
            [d * s for d, s in zip(in_dims, strides)]
        pads = [0] * 2 * spatial
        for i in range(spatial):
            total = strides[i] * (in_dims[i] - 1) + output_padding[i] + \
                ((kernel[i] - 1) * dilations[i] + 1) - target[i]
            if auto == "SAME_UPPER":
                pads[i], pads[i + spatial] = total // 2, total - total // 2
            else:
                pads[i], pads[i + spatial] = total - total // 2, total // 2
    elif auto == "VALID":
        pads = [0] * 2 * spatial
    pre = pads[:spatial]
    # output_padding extends the far end: less end padding (negative means extend).
    post = [p - op for p, op in zip(pads[spatial:], output_padding)]
    one_d = spatial == 1
    if one_d:
        x = unsqueeze(ctx, x, [rank(x)])
        weights = weights[..., None]
        kernel, strides, dilations = kernel + [1], strides + [1], dilations + [1]
        pre, post = pre + [0], post + [0]
    extend = [max(0, -p) for p in post]
    separate_bias = any(extend) and b is not None
    no_bias = trt.Weights(trt.DataType(x.dtype))
    layer = ctx.network.add_deconvolution_nd(
        x, out_maps, trt.Dims(kernel), ctx.weights(weights),
        ctx.weights(bias) if bias is not None and not separate_bias
        else no_bias)
    if b is not None and bias is None and not separate_bias:
        layer.set_input(2, b)
    layer.stride_nd = trt.Dims(strides)
    layer.dilation_nd = trt.Dims(dilations)
    layer.num_groups = group
    layer.pre_padding = trt.Dims([max(0, p) for p in pre])
    layer.post_padding = trt.Dims([max(0, p) for p in post])
    out = output_of(layer)
    if any(p < 0 for p in pre):
        node.fail(ErrorCode.UNSUPPORTED_NODE_ATTR, f"negative begin padding {pre}")
    if any(extend):
        dims = list(out.shape)
        if any(d < 0 for d in dims):
            node.fail(ErrorCode.UNSUPPORTED_NODE_DYNAMIC, "extending a dynamic output")
        size = dims[:2] + [d + e for d, e in zip(dims[2:], extend)]
        grow = ctx.network.add_slice(out, trt.Dims([0] * len(dims)), trt.Dims(size),
                                     trt.Dims([1] * len(dims)))
        grow.mode = trt.SampleMode.FILL
        out = output_of(grow)
        if b is not None:
            out = elementwise(ctx, out, reshape(ctx, b, [1, -1] + [1] * (rank(out) - 2)), "SUM")
    return [squeeze(ctx, out, [rank(out) - 1]) if one_d else out]


@importer("Col2Im", since=18)
def col2im(ctx: ImportContext, node: Node):
    """The ``Col2Im_TRT`` plugin; image_shape and block_shape must be known at build time."""
    from engine.onnx.compose import library_plugin

    x = node.require(0)
    image = [int(v) for v in ctx.require_value(node, 1, "image_shape").reshape(-1)]
    block = [int(v) for v in ctx.require_value(node, 2, "block_shape").reshape(-1)]
    r = len(image)
    (out,) = library_plugin(ctx, "Col2Im_TRT", [x], image_shape=image, block_shape=block,
                            strides=node.attr("strides", [1] * r),
                            dilations=node.attr("dilations", [1] * r),
                            pads=node.attr("pads", [0] * (2 * r)))
    return [out]
