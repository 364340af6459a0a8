"""The native pickling of the lowercase methods (`python/src/pickle5.rs`) held to the
standard library: its bytes are `pickle.dumps(obj, 5)`'s, byte for byte, and what it
reads back is what `pickle.loads` returns, sharing and errors included. In-process:
the codec needs no job; `test_p2p.py` sends the same objects between ranks."""

import collections
import datetime
import enum
import math
import pickle
import random

import pytest

from shmpi import _shmpi as native


class Color(enum.IntEnum):
    RED = 1


class Plain:
    def __eq__(self, other):
        return type(other) is Plain


SHARED_LIST = [1, 2]
SHARED_STR = "shared-" + "x" * 10  # not interned: one object, referenced twice
SELF_LIST = []
SELF_LIST.append(SELF_LIST)
SELF_DICT = {}
SELF_DICT["me"] = SELF_DICT

# What the encoder takes on.
NATIVE = [
    None, True, False,
    0, 1, 127, 128, 255, 256, 65535, 65536, 2**31 - 1, 2**31, 2**32, 2**40, 2**63 - 1,
    -1, -128, -129, -255, -256, -32768, -32769, -(2**31), -(2**31) - 1, -(2**40),
    -(2**63), -(2**63) + 1, -(2**55), 2**55, -(2**56), 2**56 - 1,
    0.0, -0.0, 3.14, -1e300, math.inf, -math.inf, math.nan, 5e-324,
    "", "a", "ab", "x" * 255, "x" * 256, "é€😀", "\x00",
    b"", b"\x00", b"x" * 255, b"x" * 256,
    (), (1,), (1, 2), (1, 2, 3), (1, 2, 3, 4), ((),), (1, "a", "a"),
    [], [1], [1, 2], list(range(999)), list(range(1000)), list(range(1001)),
    list(range(2000)), list(range(2001)),
    {}, {"a": 7}, {"a": 7, "b": 3.14}, {i: i for i in range(999)},
    {i: i for i in range(1000)}, {i: i for i in range(1001)}, {i: i for i in range(2000)},
    {(1, 2): [3, {"x": None}], "k": (b"v", 2.5)},
    [SHARED_LIST, SHARED_LIST, (SHARED_LIST,)], [SHARED_STR, SHARED_STR],
    {"a": SHARED_STR, SHARED_STR: "a"}, SELF_LIST, SELF_DICT, [SELF_LIST, SELF_DICT],
    [[[[[[[[1]]]]]]]],
    {"nested": {"deeper": {"deepest": [1, (2, 3.0), "four", b"five", None, True]}}},
]

# What it leaves to `pickle.dumps`: other types, subclasses, lone surrogates, ints
# beyond 64 bits, a recursive tuple, deep or large objects.
REC_TUPLE = ([],)
REC_TUPLE[0].append(REC_TUPLE)
DECLINED = [
    Color.RED, Plain(), collections.OrderedDict(a=1), {1, 2}, frozenset([1]),
    bytearray(b"x"), 1 + 2j, "\ud800", 2**64, -(2**64) - 1, [1, "\udfff"],
    REC_TUPLE, [Plain()], {"k": {1, 2}}, {"k": [Color.RED]},
    eval("[" * 40 + "]" * 40),
    ["s%d" % i for i in range(100)],  # more memoized objects than the encoder scans
    b"x" * 40000,
]


def repickle(obj):
    """Bytes that capture an object's value, types and sharing (`pickle.dumps` memoizes
    by identity), and compare NaN equal to itself."""
    return pickle.dumps(obj, 5)


@pytest.mark.parametrize("obj", NATIVE, ids=lambda o: repr(o)[:40])
def test_native_bytes_are_pickles_bytes(obj):
    assert native._native_dumps(obj) == pickle.dumps(obj, 5)
    assert native.dumps(obj) == pickle.dumps(obj, 5)


@pytest.mark.parametrize("obj", DECLINED, ids=lambda o: repr(o)[:40])
def test_other_objects_go_to_pickle(obj):
    assert native._native_dumps(obj) is None
    assert native.dumps(obj) == pickle.dumps(obj, 5)


# Declined objects whose classes a fresh unpickler can import.
DECLINED_STD = [o for o in DECLINED if not isinstance(o, (Color, Plain, list, dict))]


@pytest.mark.parametrize("obj", NATIVE + DECLINED_STD, ids=lambda o: repr(o)[:40])
def test_loads_returns_what_pickle_returns(obj):
    data = pickle.dumps(obj, 5)
    got = native.loads(data)
    assert repickle(got) == repickle(pickle.loads(data))
    assert type(got) is type(obj)


def test_decoder_keeps_sharing_and_recursion():
    got = native._native_loads(pickle.dumps([SHARED_LIST, SHARED_LIST, (SHARED_LIST,)], 5))[0]
    assert got[0] is got[1] is got[2][0]
    got = native._native_loads(pickle.dumps(SELF_LIST, 5))[0]
    assert got[0] is got
    got = native._native_loads(pickle.dumps(SELF_DICT, 5))[0]
    assert got["me"] is got


def test_decoder_declines_what_it_does_not_read():
    # Protocol 0-4 opcodes, globals, a surrogate string (read by the decoder itself).
    for obj in ["\ud800", datetime.date(2026, 12, 4), {1, 2}, bytearray(b"x")]:
        for proto in range(6):
            data = pickle.dumps(obj, proto)
            want = pickle.loads(data)
            assert repickle(native.loads(data)) == repickle(want)
    assert native._native_loads(pickle.dumps("\ud800", 5))[0] == "\ud800"
    assert native._native_loads(pickle.dumps(datetime.date(2026, 12, 4), 5)) is None


def outcome(f, data):
    try:
        return "ok", repickle(f(data))
    except Exception as e:  # noqa: BLE001 - the point is to compare any error
        return "error", type(e)


# Hand-made edge cases of the stack rules (marks, memo, frames, the end).
EDGES = [
    b"\x80\x05](\x94e.",  # MEMOIZE with only a mark above the item
    b"\x80\x05}(K\x01K\x02s.",  # SETITEM into a dict below the mark
    b"\x80\x05](K\x01a.",  # APPEND into a list below the mark
    b"\x80\x05K\x01(\x85t.",  # TUPLE1 with nothing above the mark
    b"\x80\x05(K\x01\x85t.",
    b"\x80\x05h\x00.",  # BINGET of nothing
    b"\x80\x05}(K\x01u.",  # odd SETITEMS
    b"\x80\x05}(]K\x01u.",  # unhashable key
    b"\x80\x05](e.",
    b"\x80\x05}(u.",
    b"\x80\x06N.",  # a protocol from the future
    b"\x80\x05\x95\xff\x00\x00\x00\x00\x00\x00\x00N.",  # a frame past the end
    b"\x80\x05N",  # no STOP
    b"\x80\x05NK\x01.",  # two objects at STOP
    b"\x80\x05(.",
    b"",
    b".",
    b"\x80\x05\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\x01.",  # LONG1 of 9 bytes
    b"\x80\x05\x8a\x00.",
    b"\x80\x05\x8a\x01\xff.",
    b"\x80\x05X\x02\x00\x00\x00\xed\xa0.",  # a truncated surrogate
]


@pytest.mark.parametrize("data", EDGES)
def test_edge_cases_end_as_pickle_ends(data):
    assert outcome(native.loads, data) == outcome(pickle.loads, data)


def test_malformed_input_fails_as_pickle_fails():
    rng = random.Random(20261204)
    corpus = [pickle.dumps(o, 5) for o in NATIVE if len(pickle.dumps(o, 5)) < 200]
    checked = 0
    for data in corpus:
        cases = [data[:i] for i in range(len(data))]  # every truncation
        cases.append(data + b".")  # bytes after STOP
        for _ in range(30):
            b = bytearray(data)
            b[rng.randrange(len(b))] = rng.choice(
                [rng.randrange(256), *b"NKMJGhjX\x8c\x94}])(tsuae.\x85\x86\x87\x8a\x95"]
            )
            cases.append(bytes(b))
        for case in cases:
            assert outcome(native.loads, case) == outcome(pickle.loads, case), case
            checked += 1
    assert checked > 2000


def test_randomized_objects_match_pickle():
    rng = random.Random(7)
    pool_str = ["", "a", "key", "é", "x" * 300]

    def make(depth):
        kind = rng.randrange(10 if depth < 4 else 6)
        if kind == 0:
            return None
        if kind == 1:
            return rng.choice([True, False])
        if kind == 2:
            return rng.choice([rng.randrange(-(2**63), 2**63), rng.randrange(-300, 70000)])
        if kind == 3:
            return rng.uniform(-1e9, 1e9)
        if kind == 4:
            return rng.choice(pool_str)  # the same objects again: memo hits
        if kind == 5:
            return bytes(rng.randrange(256) for _ in range(rng.randrange(5)))
        n = rng.randrange(6)
        items = [make(depth + 1) for _ in range(n)]
        if kind == 6:
            return tuple(items)
        if kind == 7:
            return items
        return {rng.choice(pool_str + [rng.randrange(100)]): v for v in items}

    native_count = 0
    for _ in range(2000):
        obj = make(0)
        want = pickle.dumps(obj, 5)
        fast = native._native_dumps(obj)
        if fast is not None:
            native_count += 1
            assert fast == want, obj
        assert repickle(native.loads(want)) == repickle(pickle.loads(want))
    assert native_count > 1900
