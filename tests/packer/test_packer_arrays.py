"""pack_arrays (the windowers and kernels) against the plain reference."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastpack import pack_arrays
from fastpack.errors import UserError
from packer_reference import reference_windows

DOCS = [[1, 2, 3], [4, 5], [], [6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17], [18], []]


@pytest.mark.parametrize("seq_len,stride", [(1, 1), (3, 1), (4, 2), (4, 3), (4, 4), (5, 5), (64, 64), (64, 7)])
@pytest.mark.parametrize("mode", ["concat", "document"])
@pytest.mark.parametrize("eos,bos", [(0, None), (None, None), (0, 99), (None, 99)])
@pytest.mark.parametrize("pad_last", [False, True])
def test_matches_reference(seq_len, stride, mode, eos, bos, pad_last):
    got = pack_arrays(DOCS, seq_len=seq_len, stride=stride, mode=mode, eos_id=eos, add_eos=eos is not None,
                      bos_id=bos, pad_id=77, pad_last=pad_last)
    want = reference_windows(DOCS, seq_len, stride, mode, eos=eos, bos=bos, pad=77, pad_last=pad_last)
    assert got.dtype == np.int32 and got.flags.c_contiguous
    np.testing.assert_array_equal(got, want)


def test_document_longer_than_many_windows():
    doc = list(range(1, 1000))
    got = pack_arrays([doc], seq_len=16, stride=5, eos_id=0)
    np.testing.assert_array_equal(got, reference_windows([doc], 16, 5, eos=0))
    assert got.shape == ((1000 - 16) // 5 + 1, 16)


def test_short_stream_gives_no_window_or_one_padded():
    assert pack_arrays([[1, 2]], seq_len=8, eos_id=0).shape == (0, 8)
    np.testing.assert_array_equal(pack_arrays([[1, 2]], seq_len=4, eos_id=0, pad_id=9, pad_last=True), [[1, 2, 0, 9]])


def test_uint16_output_equals_int32():
    a = pack_arrays(DOCS, seq_len=4, stride=3, eos_id=0, dtype="uint16")
    b = pack_arrays(DOCS, seq_len=4, stride=3, eos_id=0)
    assert a.dtype == np.uint16
    np.testing.assert_array_equal(a, b)
    assert pack_arrays(DOCS, seq_len=4, eos_id=0, dtype="auto", vocab_size=32000).dtype == np.uint16
    assert pack_arrays(DOCS, seq_len=4, eos_id=0, dtype="auto", vocab_size=70000).dtype == np.int32


def test_values_and_offsets_input():
    values = np.array([1, 2, 3, 4, 5], np.int64)
    offsets = np.array([0, 2, 2, 5])
    np.testing.assert_array_equal(pack_arrays((values, offsets), seq_len=2, eos_id=0),
                                  reference_windows([[1, 2], [], [3, 4, 5]], 2, eos=0))


@pytest.mark.parametrize("kwargs,match", [
    (dict(seq_len=0, eos_id=0), "--seq-len must be >= 1"),
    (dict(seq_len=4, stride=5, eos_id=0), r"--stride \(5\) must not exceed --seq-len \(4\)"),
    (dict(seq_len=4, stride=0, eos_id=0), "--stride must be >= 1"),
    (dict(seq_len=4, eos_id=0, pad_last=True), "--pad-last pads windows and needs a pad id"),
    (dict(seq_len=4, eos_id=0, mode="document"), "--mode document pads windows and needs a pad id"),
    (dict(seq_len=4), "no eos id"),
    (dict(seq_len=4, eos_id=70000, dtype="uint16"), "does not fit uint16"),
    (dict(seq_len=4, eos_id=5, vocab_size=5), "is >= vocab size 5"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(UserError, match=match):
        pack_arrays(DOCS, **kwargs)


@pytest.mark.parametrize("docs,match", [([[1, -2]], "-2 is negative"), ([[2**31]], "beyond int32"),
                                        ([[1], [7]], ">= vocab size 5")])
def test_bad_ids(docs, match):
    with pytest.raises(UserError, match=match):
        pack_arrays(docs + [[9]], seq_len=2, eos_id=0, vocab_size=5 if "vocab" in match else None)


docs_strategy = st.lists(st.lists(st.integers(0, 1000), max_size=40), max_size=30)


@settings(max_examples=300, deadline=None)
@given(docs=docs_strategy, seq_len=st.integers(1, 20), stride_frac=st.floats(0.01, 1.0),
       mode=st.sampled_from(["concat", "document"]), eos=st.sampled_from([None, 0]), bos=st.sampled_from([None, 5]),
       pad_last=st.booleans())
def test_property_matches_reference(docs, seq_len, stride_frac, mode, eos, bos, pad_last):
    stride = max(1, int(seq_len * stride_frac))
    got = pack_arrays(docs, seq_len=seq_len, stride=stride, mode=mode, eos_id=eos, add_eos=eos is not None,
                      bos_id=bos, pad_id=1001, pad_last=pad_last)
    np.testing.assert_array_equal(got, reference_windows(docs, seq_len, stride, mode, eos, bos, 1001, pad_last))


@settings(max_examples=100, deadline=None)
@given(docs=docs_strategy, seq_len=st.integers(1, 12), stride=st.integers(1, 12), splits=st.lists(st.integers(0, 30)))
def test_property_windows_span_batches(docs, seq_len, stride, splits):
    """Feeding the documents in arbitrary batches gives the windows of one stream."""
    from fastpack.spec import PackSpec
    from fastpack.writers import ArraySink

    stride = min(stride, seq_len)
    params = PackSpec(seq_len=seq_len, stride=stride, eos_id=0)
    sink = ArraySink(seq_len, np.int32)
    windower = params.windower(sink)
    cuts = sorted({0, len(docs), *[s for s in splits if s < len(docs)]})
    for a, b in zip(cuts, cuts[1:]):
        part = docs[a:b]
        values = np.array([t for d in part for t in d], np.int32)
        offsets = np.cumsum([0] + [len(d) for d in part]).astype(np.int64)
        windower.feed(*params.separators.apply(values, offsets))
    windower.finish()
    np.testing.assert_array_equal(sink.rows(), reference_windows(docs, seq_len, stride, eos=0))
