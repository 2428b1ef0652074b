"""Lab 03 checkers judge what the answer does: other correct styles pass, typical mistakes fail with their name."""

from __future__ import annotations

import numpy as np

from conftest import assert_fails, assert_not_done, assert_passes
from trtlab import _compat
from trtlab.check import lab03

# ---------------------------------------------------------------- build_plan


def build_reference(trt, onnx_bytes, shapes, *, flags=None, profile=True, add=True, check_parse=True, swap=False,
                    check_none=True):
    logger = trt.Logger(trt.Logger.ERROR)
    builder = trt.Builder(logger)
    strongly = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(strongly if flags is None else flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_bytes) and check_parse:
        raise RuntimeError("; ".join(parser.get_error(i).desc() for i in range(parser.num_errors)))
    config = builder.create_builder_config()
    if profile:
        p = builder.create_optimization_profile()
        for name, (lo, opt, hi) in shapes.items():
            p.set_shape(name, hi, opt, lo) if swap else p.set_shape(name, lo, opt, hi)
        if add:
            config.add_optimization_profile(p)
    plan = builder.build_serialized_network(network, config)
    if plan is None and check_none:
        raise RuntimeError("build failed")
    return plan


def build_with_context_managers(trt, onnx_bytes, shapes):
    """The style of NVIDIA's samples: every object in a `with`."""
    logger = trt.Logger(trt.Logger.WARNING)
    flag = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    with trt.Builder(logger) as builder, builder.create_network(flag) as network, \
            trt.OnnxParser(network, logger) as parser, builder.create_builder_config() as config:
        assert isinstance(builder, trt.Builder)
        if not parser.parse(onnx_bytes):
            errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
            raise ValueError(f"ONNX parse failed: {errors}")
        profile = builder.create_optimization_profile()
        for name in shapes:
            profile.set_shape(name, *shapes[name])
        config.add_optimization_profile(profile)
        serialized = builder.build_serialized_network(network, config)
        assert serialized is not None, "engine build failed"
        return serialized


def build_keywords_and_bytes(trt, onnx_bytes, shapes):
    """Keyword arguments, a workspace limit, parse errors counted, a plan returned as bytes."""
    builder = trt.Builder(trt.Logger())
    network = builder.create_network(flags=1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser = trt.OnnxParser(network, builder.logger)
    parser.parse(onnx_bytes)
    if parser.num_errors:
        raise RuntimeError(parser.get_error(0).desc())
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, 1 << 28)
    profile = builder.create_optimization_profile()
    for name, (smallest, typical, largest) in sorted(shapes.items()):
        profile.set_shape(input=name, min=smallest, opt=typical, max=largest)
    index = config.add_optimization_profile(profile)
    assert index == 0
    plan = builder.build_serialized_network(network, config)
    if not plan:
        raise RuntimeError("no plan")
    return bytes(plan)


def hard_coded_name(trt, onnx_bytes, shapes):
    return build_reference(trt, onnx_bytes, {"images": next(iter(shapes.values()))})


def hard_coded_shapes(trt, onnx_bytes, shapes):
    return build_reference(trt, onnx_bytes, {name: ((1, 3, 8, 8), (8, 3, 8, 8), (16, 3, 8, 8)) for name in shapes})


def own_import(trt, onnx_bytes, shapes):
    import tensorrt_rtx as real

    return build_reference(real, onnx_bytes, shapes)


def test_build_plan_accepts_other_correct_styles():
    result = assert_passes(lab03.build_plan, build_reference)
    assert "parser errors are caught" in result.message and lab03.LONG_NAME in result.message
    assert_passes(lab03.build_plan, build_with_context_managers)
    assert_passes(lab03.build_plan, build_keywords_and_bytes)


def test_build_plan_names_each_mistake():
    ex = lab03.build_plan
    assert_fails(ex, lambda trt, o, s: build_reference(trt, o, s, flags=0), "not created strongly typed")
    assert_fails(ex, lambda trt, o, s: build_reference(trt, o, s, profile=False),
                 r"raised RuntimeError \(build failed\) because no optimization profile was created")
    assert_fails(ex, lambda trt, o, s: build_reference(trt, o, s, add=False),
                 r"raised RuntimeError \(build failed\) because .*created but never added to the config")
    assert_fails(ex, lambda trt, o, s: build_reference(trt, o, s, swap=True),
                 "profile is not valid.*order \\(min, opt, max\\)")
    assert_fails(ex, lambda trt, o, s: build_reference(trt, o, s, add=False, check_none=False),
                 "never added to the config.*your function did not notice")
    assert_fails(ex, lambda trt, o, s: build_reference(trt, o, s, check_parse=False, check_none=False),
                 "returned normally.*parser.parse returns False")
    assert_fails(ex, hard_coded_name, f"sets no shape for the input '{lab03.LONG_NAME}'.*do not hard-code")
    assert_fails(ex, hard_coded_shapes, r"min/opt/max = .*\(8, 3, 8, 8\).*use the names and shapes you are given")
    assert_fails(ex, lambda trt, o, s: (build_reference(trt, o, s), None)[1], "returned None")
    assert_fails(ex, own_import, "never called on the `trt` module passed to your function")


def test_build_plan_stub_and_hang(fails_within_limit):
    def stub(trt, onnx_bytes, shapes):
        raise NotImplementedError("exercise not done yet: write your code here")

    assert_not_done(lab03.build_plan, stub)
    fails_within_limit(lab03.build_plan)


# ---------------------------------------------------------------- run_engine


def run_reference(trt, engine, context, feeds, device, *, default_stream=False, engine_shape=False,
                  skip_shape=False, check=True, keep_inputs=True):
    inputs = {}
    for name, array in feeds.items():
        if not skip_shape:
            context.set_input_shape(name, array.shape)
        buf = device.upload(array)
        if keep_inputs:
            inputs[name] = buf
        context.set_tensor_address(name, device.ptr(buf))
        del buf
    outputs = {}
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        if engine.get_tensor_mode(name) == trt.TensorIOMode.OUTPUT:
            shape = (engine if engine_shape else context).get_tensor_shape(name)
            dtype = _compat.numpy_dtype(trt, engine.get_tensor_dtype(name))
            outputs[name] = device.empty(tuple(max(d, 1) if skip_shape else d for d in shape), dtype)
            context.set_tensor_address(name, device.ptr(outputs[name]))
    ok = context.execute_async_v3(0 if default_stream else device.stream)
    if check and not ok:
        raise RuntimeError("execute_async_v3 failed")
    device.synchronize()
    return {name: device.download(buf) for name, buf in outputs.items()}


def run_one_loop_with_nptype(trt, engine, context, feeds, device):
    """One loop over all tensors, trt.nptype for the dtype, the buffers kept in a list."""
    keep, names_out = [], []
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
            arr = np.ascontiguousarray(feeds[name], dtype=trt.nptype(engine.get_tensor_dtype(name)))
            if not context.set_input_shape(name, tuple(arr.shape)):
                raise ValueError(name)
            keep.append(device.upload(arr))
            context.set_tensor_address(name, device.ptr(keep[-1]))
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        if engine.get_tensor_mode(name) == trt.TensorIOMode.OUTPUT:
            shape = [int(d) for d in context.get_tensor_shape(name)]
            keep.append(device.empty(shape, trt.nptype(engine.get_tensor_dtype(name))))
            context.set_tensor_address(name, device.ptr(keep[-1]))
            names_out.append((name, keep[-1]))
    assert context.execute_async_v3(device.stream)
    device.synchronize()
    return dict((name, device.download(buf)) for name, buf in names_out)


def _upload_f64(trt, engine, context, feeds, device):
    return run_reference(trt, engine, context, {k: v.astype(np.float64) for k, v in feeds.items()}, device)


def test_run_engine_accepts_other_correct_styles():
    assert_passes(lab03.run_engine, run_reference)
    result = assert_passes(lab03.run_engine, run_one_loop_with_nptype)
    assert "5, 2 and 1" in result.message


def test_run_engine_names_each_mistake():
    ex = lab03.run_engine
    assert_fails(ex, lambda *a: run_reference(*a, default_stream=True), "default stream")
    assert_fails(ex, lambda *a: run_reference(*a, engine_shape=True), "-1 marks a dynamic dimension")
    assert_fails(ex, lambda *a: run_reference(*a, skip_shape=True, check=False),
                 "TensorRT reported: execute_async_v3: input shapes not set.*check the return values")
    assert_fails(ex, _upload_f64, "outside tolerance.*Likely causes: the input uploaded in another dtype")
    assert_fails(ex, lambda *a: run_reference(*a)["logits"], "return a dict")
    assert_fails(ex, lambda *a: run_reference(*a, keep_inputs=False),
                 "freed before the engine used it.*keep a reference")


def test_run_engine_stub_and_hang(fails_within_limit):
    def stub(*args):
        raise NotImplementedError

    assert_not_done(lab03.run_engine, stub)
    fails_within_limit(lab03.run_engine)


# ---------------------------------------------------------------- choose_calibration


def choose_reference(brightness, labels, n, seed=0):
    from trtlab.precision import representative_indices

    return representative_indices(brightness, labels, n, seed=seed)


def choose_random(brightness, labels, n, seed=0):
    return np.random.default_rng(seed).choice(len(labels), n, replace=False)


def choose_evenly_spaced(brightness, labels, n, seed=0):
    """Every (len/n)-th image of the sorted pool, to the very end: deterministic, covers the range."""
    order = np.argsort(brightness, kind="stable")
    return order[np.linspace(0, len(labels) - 1, n).round().astype(np.int64)]


def test_choose_calibration_accepts_other_correct_styles():
    assert_passes(lab03.choose_calibration, choose_reference)
    assert_passes(lab03.choose_calibration, choose_random)
    assert_passes(lab03.choose_calibration, choose_evenly_spaced)


def test_choose_calibration_names_each_mistake():
    ex = lab03.choose_calibration
    assert_fails(ex, lambda b, l, n, seed=0: np.arange(n), "brightest 10%.*Likely causes")
    assert_fails(ex, lambda b, l, n, seed=0: np.arange(0, len(l), 7)[:n], "brightest 10%.*fixed stride")
    assert_fails(ex, lambda b, l, n, seed=0: np.argsort(b)[-n:], "darkest quarter")
    assert_fails(ex, lambda b, l, n, seed=0: np.r_[np.arange(n // 2), np.arange(len(l) - n + n // 2, len(l))],
                 "gap in the brightness")
    assert_fails(ex, lambda b, l, n, seed=0: np.random.default_rng(seed).choice(len(l), n, replace=True), "duplicate")
    assert_fails(ex, lambda b, l, n, seed=0: np.random.default_rng(seed).choice(2000, n, replace=False),
                 "pool of 1500.*use len\\(labels\\)")
    assert_fails(ex, lambda b, l, n, seed=0: np.random.default_rng(seed).choice(len(l), 256, replace=False),
                 "asked for 100 images.*use the n argument")
    assert_fails(ex, lambda b, l, n, seed=0: np.random.choice(len(l), n, replace=False), "different images.*seed")
    assert_fails(ex, lambda b, l, n, seed=0: np.flatnonzero(l != 3)[::7][:n], "class 3 is missing")
    assert_fails(ex, lambda b, l, n, seed=0: np.linspace(0, 1, n), "integer indices")


def test_choose_calibration_stub_and_hang(fails_within_limit):
    def stub(b, l, n, seed=0):
        raise NotImplementedError

    assert_not_done(lab03.choose_calibration, stub)
    fails_within_limit(lab03.choose_calibration)


def test_every_exercise_has_three_hints():
    for ex in (lab03.build_plan, lab03.run_engine, lab03.choose_calibration):
        assert len(ex.hints) == 3 and all(len(h) > 40 for h in ex.hints)


# ---------------------------------------------------------------- fp32_layers

FLOATS = ("float32", "float16", "bfloat16", "float8", "float4")


def fp32_loop(layers):
    found = []
    for layer in layers:
        ins = [d for d in layer.inputs if d in FLOATS]
        outs = [d for d in layer.outputs if d in FLOATS]
        if ins and outs and set(ins + outs) == {"float32"}:
            found.append(layer.name)
    return found


def fp32_sets(layers):
    """Another style: a set comprehension that keeps only floating types, returned as a set."""
    def floats(dtypes):
        return {d for d in dtypes if d.startswith(("float", "bfloat"))}

    return {l.name for l in layers if floats(l.inputs) == {"float32"} == floats(l.outputs)}


def counts_fp16_layers(layers):
    return [l.name for l in layers if "float16" in l.inputs + l.outputs]


def only_inputs(layers):
    return [l.name for l in layers if l.inputs and all(d == "float32" for d in l.inputs)]


def only_outputs(layers):
    return [l.name for l in layers if l.inputs and all(d == "float32" for d in l.outputs)]


def includes_constants(layers):
    return [l.name for l in layers if all(d == "float32" for d in l.inputs + l.outputs if d in FLOATS)
            and any(d in FLOATS for d in l.outputs)]


def tensorrt_spelling(layers):
    return [l.name for l in layers if l.inputs and set(l.inputs + l.outputs) == {"FLOAT"}]


def test_fp32_layers_accepts_other_styles():
    assert_passes(lab03.fp32_layers, fp32_loop)
    assert_passes(lab03.fp32_layers, fp32_sets)


def test_fp32_layers_rejects_fp16_layers():
    assert_fails(lab03.fp32_layers, counts_fp16_layers, r"runs in \['float16'\]: you returned lower-precision layers")


def test_fp32_layers_rejects_looking_only_at_inputs():
    assert_fails(lab03.fp32_layers, only_inputs, r"reads float32 but writes \['float16'\].*only at the inputs")


def test_fp32_layers_rejects_looking_only_at_outputs():
    assert_fails(lab03.fp32_layers, only_outputs, r"converts back to FP32.*only at the outputs")


def test_fp32_layers_rejects_constants():
    assert_fails(lab03.fp32_layers, includes_constants, r"constant layer: it reads nothing")


def test_fp32_layers_names_the_dtype_spelling():
    assert_fails(lab03.fp32_layers, tensorrt_spelling, r"returned no layer.*'float32'")


def test_fp32_layers_wants_names():
    assert_fails(lab03.fp32_layers, lambda layers: [l for l in layers if fp32_loop([l])], r"layer \*names\*")


def test_fp32_layers_todo_is_not_done():
    def todo(layers):
        raise NotImplementedError

    assert_not_done(lab03.fp32_layers, todo)


def test_choose_calibration_verdict_and_hint_in_chinese():
    """The first n images (the darkest: the pool is sorted) judged in Chinese, numbers kept; then English again."""
    from trtlab import i18n

    i18n.set_language("zh_CN")
    try:
        result = assert_fails(lab03.choose_calibration, lambda b, l, n, seed=0: np.arange(n),
                              r"你的 256 张图像中没有一张来自 2000 张图像池中最亮的 10%.*INT8.*可能的原因")
        assert "brightest" not in result.message, result.message
        assert lab03.choose_calibration.hint(2).startswith("💡 提示 2/3（lab03.choose_calibration）：你拿到的图像池按亮度")
        assert lab03.choose_calibration.shown_title == "选择覆盖输入范围的校准集"
    finally:
        i18n.set_language("en")
    assert "none of your 256 images comes from the brightest 10%" in lab03.choose_calibration.evaluate(
        lambda b, l, n, seed=0: np.arange(n)).message
