"""Episodes as bits: 64 episodes per ``uint64`` word, and Bernoulli outcomes sampled straight into words.

Lane ``j`` of a row (an episode) is bit ``j % 64`` of word ``j // 64``. :func:`bernoulli_words`
draws Bernoulli outcomes in that layout. When every lane of a word has the same probability (64 or
a multiple of 64 episodes per draw) it compares 64 uniform numbers with the threshold bit by bit
(bit-sliced): each step consumes one random word and settles about half of the lanes still tied,
so a word costs about ten random words and a few bitwise operations instead of 64 floats.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

ONES = np.uint64(0xFFFFFFFFFFFFFFFF)
_ONE = np.uint64(1)
#: Bit-sliced comparison: steps done on every word (in cache-sized blocks) before the tied words are gathered.
_HEAD_STEPS = 10
_BLOCK = 1 << 14
#: Lanes sampled per block of rows (bounds the temporary arrays).
_LANES_PER_BLOCK = 1 << 24


def n_words(lanes: int) -> int:
    """Words needed for ``lanes`` lanes (at least one)."""
    return max(1, math.ceil(lanes / 64))


def pack(bits: np.ndarray, words: int) -> np.ndarray:
    """Pack a bool array ``(rows, lanes)`` into ``(rows, words)`` uint64 words."""
    rows, lanes = bits.shape
    padded = np.zeros((rows, words * 64), dtype=bool)
    padded[:, :lanes] = bits
    return np.packbits(padded, axis=1, bitorder="little").view("<u8").reshape(rows, words)


def unpack(words: np.ndarray, lanes: int) -> np.ndarray:
    """Inverse of :func:`pack`: ``(rows, words)`` words to ``(rows, lanes)`` bools."""
    rows = words.shape[0]
    if rows == 0:
        return np.zeros((0, lanes), dtype=bool)
    as_bytes = np.ascontiguousarray(words).astype("<u8", copy=False).view(np.uint8).reshape(rows, -1)
    return np.unpackbits(as_bytes, axis=1, bitorder="little")[:, :lanes].view(bool)


def count_lanes(words: np.ndarray, draws: int, episodes: int) -> np.ndarray:
    """Per row and draw (``episodes`` consecutive lanes each), how many lanes are set: ``(rows, draws)``."""
    if episodes % 64 == 0:
        return np.bitwise_count(words).reshape(len(words), draws, episodes // 64).sum(axis=2)
    return unpack(words, draws * episodes).reshape(len(words), draws, episodes).sum(axis=2)


def _sliced_head(bg: np.random.BitGenerator, thr: np.ndarray, lt: np.ndarray, eq: np.ndarray) -> None:
    """The first comparison steps of 64 uniforms per word against ``thr`` (in place on ``lt``, ``eq``)."""
    size = thr.size
    tmp = np.empty(size, np.uint64)
    mask = np.empty(size, np.uint64)
    lt[:] = 0
    eq[:] = ONES
    for j in range(1, _HEAD_STEPS + 1):
        np.right_shift(thr, np.uint64(63 - j), out=mask)
        np.bitwise_and(mask, _ONE, out=mask)
        np.negative(mask, out=mask)  # all ones where the threshold's bit j is 1
        r = bg.random_raw(size)
        np.bitwise_xor(r, mask, out=tmp)  # lanes whose uniform bit differs from the threshold's
        np.bitwise_and(tmp, mask, out=r)  # ... with uniform bit 0 < threshold bit 1: below the threshold
        np.bitwise_and(r, eq, out=r)
        np.bitwise_or(lt, r, out=lt)
        np.bitwise_and(eq, np.invert(tmp, out=tmp), out=eq)


def _sliced(rng: np.random.Generator, p: np.ndarray) -> np.ndarray:
    """One word of 64 Bernoulli(p) outcomes per entry of the 1-D array ``p``."""
    out = np.zeros(p.size, np.uint64)
    out[p >= 1.0] = ONES
    pos = np.flatnonzero((p > 0.0) & (p < 1.0))
    thr = np.floor(p[pos] * 2.0**63).astype(np.uint64)  # the uniform is 0.b1 b2 ... b63 in binary
    bg = rng.bit_generator
    lt = np.empty(pos.size, np.uint64)
    eq = np.empty(pos.size, np.uint64)
    for b in range(0, pos.size, _BLOCK):
        _sliced_head(bg, thr[b : b + _BLOCK], lt[b : b + _BLOCK], eq[b : b + _BLOCK])
    out[pos] = lt
    tied = np.flatnonzero(eq)
    pos, thr, lt, eq = pos[tied], thr[tied], lt[tied], eq[tied]
    for j in range(_HEAD_STEPS + 1, 64):
        if not pos.size:
            break
        mask = np.uint64(0) - ((thr >> np.uint64(63 - j)) & _ONE)
        r = bg.random_raw(pos.size)
        lt |= eq & ~r & mask
        eq &= ~(r ^ mask)
        if j % 3 == 0 or j == 63:
            done = np.ones(pos.size, bool) if j == 63 else eq == 0  # still tied at 2^-63: not below
            out[pos[done]] = lt[done]
            keep = ~done
            pos, thr, lt, eq = pos[keep], thr[keep], lt[keep], eq[keep]
    return out


def bernoulli_words(
    rng: np.random.Generator,
    probability: Callable[[int, int], np.ndarray],
    rows: int,
    episodes: int,
    words: int,
) -> np.ndarray:
    """Bernoulli outcomes as words, ``(rows, words)`` uint64.

    ``probability(r0, r1)`` gives rows r0..r1 as ``(r1 - r0, draws)``; each draw's value serves
    ``episodes`` consecutive lanes (lane ``d * episodes + e``; bits past the last lane are arbitrary).
    Rows are sampled in blocks, so the probabilities of all rows and lanes are never held at once.
    """
    out = np.empty((rows, words), dtype=np.uint64)
    if rows == 0:
        return out
    block = max(1, _LANES_PER_BLOCK // (words * 64))
    for r0 in range(0, rows, block):
        r1 = min(rows, r0 + block)
        p = np.asarray(probability(r0, r1))
        if episodes % 64 == 0:
            per_word = np.repeat(p.astype(float), episodes // 64, axis=1)
            out[r0:r1] = _sliced(rng, per_word.ravel()).reshape(r1 - r0, words)
        else:
            draws = p.shape[1]
            u = rng.random((r1 - r0, draws, episodes), dtype=np.float32)
            bits = (u < p.astype(np.float32, copy=False)[:, :, None]).reshape(r1 - r0, draws * episodes)
            out[r0:r1] = pack(bits, words)
    return out
