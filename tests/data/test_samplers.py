"""The resumable training sampler (issue #13)."""

from __future__ import annotations

import pytest

from bigmodel.data.samplers import ResumableSampler


def test_order_depends_on_seed_and_epoch_only():
    a, b = ResumableSampler(range(50), seed=1), ResumableSampler(range(50), seed=1)
    assert list(a) == list(b)
    assert sorted(a) == list(range(50))  # a permutation
    b.set_epoch(1)
    assert list(a) != list(b)
    assert list(ResumableSampler(range(50), seed=2)) != list(a)


def test_resume_continues_the_epoch_once():
    s = ResumableSampler(range(40), seed=3)
    s.set_epoch(2)
    full = list(s)
    r = ResumableSampler(range(40), seed=3)
    r.resume(s.position(samples_done=16))
    r.set_epoch(2)
    assert list(r) == full[16:]
    assert len(r) == 40  # Lightning counts the resumed epoch's batches against the full length
    assert list(r) == full  # only the first iteration after the resume skips


def test_resume_of_another_epoch_or_seed_does_not_skip():
    s = ResumableSampler(range(40), seed=3)
    s.resume({"epoch": 0, "samples_done": 8, "seed": 3})
    s.set_epoch(1)
    assert len(list(s)) == 40
    t = ResumableSampler(range(40), seed=4)
    t.resume({"epoch": 0, "samples_done": 8, "seed": 3})
    assert len(list(t)) == 40


def test_ranks_split_without_overlap_and_replacement_streams_differ():
    ranks = [list(ResumableSampler(range(11), seed=0, num_replicas=2, rank=r)) for r in (0, 1)]
    assert len(ranks[0]) == len(ranks[1]) == 6  # padded like DistributedSampler
    assert set(ranks[0]) | set(ranks[1]) == set(range(11))
    rep = [list(ResumableSampler(range(1000), 0, 2, r, replacement=True, num_samples=64)) for r in (0, 1)]
    assert len(rep[0]) == 32 and rep[0] != rep[1]


def test_empty_dataset_is_refused():
    with pytest.raises(ValueError, match="empty"):
        ResumableSampler([], seed=0)
