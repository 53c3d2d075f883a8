import ml_dtypes
import numpy as np
import pytest

import engine as trt

EXPECTED = {
    trt.DataType.FLOAT: (np.float32, 4),
    trt.DataType.HALF: (np.float16, 2),
    trt.DataType.BF16: (ml_dtypes.bfloat16, 2),
    trt.DataType.INT8: (np.int8, 1),
    trt.DataType.INT32: (np.int32, 4),
    trt.DataType.INT64: (np.int64, 8),
    trt.DataType.BOOL: (np.bool_, 1),
    trt.DataType.UINT8: (np.uint8, 1),
    trt.DataType.FP8: (ml_dtypes.float8_e4m3fn, 1),
    trt.DataType.INT4: (ml_dtypes.int4, 0.5),
}


def test_every_datatype_has_tensorrts_value_itemsize_and_numpy_type():
    assert set(EXPECTED) == set(trt.DataType)
    values = {d.name: int(d) for d in trt.DataType}
    assert values == {"FLOAT": 0, "HALF": 1, "INT8": 2, "INT32": 3, "BOOL": 4, "UINT8": 5,
                      "FP8": 6, "BF16": 7, "INT64": 8, "INT4": 9}
    for dtype, (np_type, size) in EXPECTED.items():
        assert trt.nptype(dtype) is np_type
        assert dtype.itemsize == size


def test_module_aliases_match_tensorrt():
    assert trt.float32 is trt.DataType.FLOAT and trt.float16 is trt.DataType.HALF
    assert trt.bfloat16 is trt.DataType.BF16 and trt.int4 is trt.DataType.INT4
    assert trt.bool is trt.DataType.BOOL and trt.fp8 is trt.DataType.FP8


@pytest.mark.parametrize("dtype", [d for d in trt.DataType if d != trt.DataType.INT4])
def test_numpy_round_trip_of_each_type(dtype):
    from engine.types import from_numpy_dtype

    assert from_numpy_dtype(np.dtype(trt.nptype(dtype))) is dtype


def test_float64_has_no_datatype_and_says_so():
    from engine.types import from_numpy_dtype

    with pytest.raises(TypeError, match="no TensorRT DataType for NumPy dtype float64"):
        from_numpy_dtype(np.float64)


def test_volume():
    assert trt.volume((2, 3, 4)) == 24
    assert trt.volume(()) == 1
    assert trt.volume((5, 0)) == 0


@pytest.mark.parametrize("count", [0, 1, 2, 7, 8, 33])
def test_int4_packs_two_per_byte_low_nibble_first(count):
    values = np.random.default_rng(count).integers(-8, 8, count)
    packed = trt.pack_int4(values)
    assert packed.dtype == np.uint8 and packed.size == (count + 1) // 2
    for i, v in enumerate(values):  # the reference: nibble i of byte i // 2
        nibble = (int(packed[i // 2]) >> (4 * (i % 2))) & 0xF
        assert nibble == (int(v) & 0xF)
    unpacked = trt.unpack_int4(packed, count)
    assert unpacked.dtype == ml_dtypes.int4
    np.testing.assert_array_equal(unpacked.astype(np.int8), values.astype(np.int8))


def test_int4_range_is_checked():
    with pytest.raises(ValueError, match=r"\[-8, 7\]"):
        trt.pack_int4(np.array([8]))


@pytest.mark.parametrize("dtype", [np.float32, np.float16, ml_dtypes.bfloat16,
                                   ml_dtypes.float8_e4m3fn, np.int8, np.int32, np.int64,
                                   np.uint8, np.bool_])
def test_weights_keep_a_reference_not_a_copy(dtype):
    arr = np.zeros((3, 2), dtype)
    w = trt.Weights(arr)
    assert w.numpy() is arr
    assert w.size == 6 and w.nbytes == arr.nbytes
    assert trt.nptype(w.dtype) is np.dtype(dtype).type


def test_weights_of_int4_count_packed_bytes():
    w = trt.Weights(trt.pack_int4(np.arange(-3, 4)), dtype=trt.int4)
    assert w.dtype is trt.DataType.INT4 and w.shape == (4,)


def test_dims():
    d = trt.Dims([1, -1, 224, 224])
    assert d == (1, -1, 224, 224) and len(d) == 4 and d.nbDims == 4
    assert trt.Dims4(1, 3, 8, 8) == (1, 3, 8, 8)
    assert trt.DimsHW(5, 7).h == 5
    with pytest.raises(ValueError, match="at most 8"):
        trt.Dims(range(9))
