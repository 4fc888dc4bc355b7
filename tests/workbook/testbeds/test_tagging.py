"""The tagging testbed: seeded draws, the hidden pattern behind every label, the Bayes posterior, the entity rate,
rejected sizes, and the BiGRU tagger's shape and two-sided context."""

import pytest
import torch

from regkit.workbook.testbeds.tagging import (
    NUM_ENTITY_WORDS,
    NUM_TRIGGERS,
    TRIGGER_RATES,
    VOCAB_SIZE,
    BiGRUTagger,
    tagging_task,
)

ENTITY_WORDS = range(NUM_TRIGGERS, NUM_TRIGGERS + NUM_ENTITY_WORDS)


def test_splits_have_the_requested_shapes_and_are_seeded():
    task = tagging_task(0, train=30, val=20, test=10, length=24, spans=2)
    for split, n in ((task.train, 30), (task.val, 20), (task.test, 10)):
        assert split.tokens.shape == split.labels.shape == split.posterior.shape == (n, 24)
        assert split.tokens.dtype == split.labels.dtype == torch.int64
        assert split.posterior.dtype == torch.float64
        assert 0 <= int(split.tokens.min()) and int(split.tokens.max()) < VOCAB_SIZE
    again, other = (tagging_task(seed, train=30, val=20, test=10, length=24, spans=2) for seed in (0, 1))
    torch.testing.assert_close(again.test.tokens, task.test.tokens)
    torch.testing.assert_close(again.train.labels, task.train.labels)
    assert not torch.equal(other.train.tokens, task.train.tokens)


@pytest.mark.parametrize(("length", "spans"), [(20, 1), (24, 2), (40, 4)])
def test_every_entity_token_is_in_the_run_after_a_trigger(length, spans):
    """Brute force, token by token: one trigger per segment; a token's posterior is its trigger's rate iff it lies
    in the run of entity words right after the trigger, ended by another word; labels only there."""
    split = tagging_task(3, train=200, length=length, spans=spans).train
    for tokens, labels, posterior in zip(split.tokens.tolist(), split.labels.tolist(), split.posterior.tolist()):
        triggers = [i for i, token in enumerate(tokens) if token < NUM_TRIGGERS]
        assert [i // (length // spans) for i in triggers] == list(range(spans))
        expected = [0.0] * length
        for i in triggers:
            j = i + 1
            while tokens[j] in ENTITY_WORDS:
                expected[j] = TRIGGER_RATES[tokens[i]]
                j += 1
            assert 1 <= j - i - 1 <= 3 and tokens[j] >= NUM_TRIGGERS + NUM_ENTITY_WORDS
            assert len({labels[k] for k in range(i + 1, j)}) == 1  # a run is an entity or not as a whole
        assert posterior == pytest.approx(expected)
        assert all(p > 0 for p, label in zip(posterior, labels) if label == 1)


def test_labels_follow_the_posterior_and_about_5_percent_are_entities():
    split = tagging_task(0, train=20_000, val=1, test=1).train
    rates = torch.tensor(TRIGGER_RATES, dtype=torch.float64)
    inside = split.posterior > 0
    assert abs(float(split.labels.double().mean()) - 0.05) < 0.003
    for rate in rates.tolist():  # each trigger's runs are entities at its rate
        rows = inside & (split.posterior == rate)
        assert abs(float(split.labels[rows].double().mean()) - rate) < 0.03


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"train": 0}, "train"),
        ({"val": 0}, "val"),
        ({"test": 0}, "test"),
        ({"spans": 0}, "spans"),
        ({"length": 10, "spans": 2}, "length // spans"),
    ],
)
def test_rejects_bad_sizes(kwargs, match):
    with pytest.raises(ValueError, match=match):
        tagging_task(0, **kwargs)


def test_tagger_scores_every_token_from_both_sides():
    torch.manual_seed(0)
    model = BiGRUTagger(embed=4, hidden=5).eval()
    tokens = tagging_task(0, train=3, val=1, test=1).train.tokens
    logits = model(tokens)
    assert logits.shape == tokens.shape
    changed = tokens.clone()
    changed[:, -1] = (changed[:, -1] + 1) % VOCAB_SIZE  # the last token reaches the first score backwards
    assert not torch.allclose(model(changed)[:, 0], logits[:, 0])
    changed = tokens.clone()
    changed[:, 0] = (changed[:, 0] + 1) % VOCAB_SIZE  # and the first token the last score forwards
    assert not torch.allclose(model(changed)[:, -1], logits[:, -1])
