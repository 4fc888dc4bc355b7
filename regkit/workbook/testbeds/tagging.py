"""A synthetic NER-like token-tagging task with rare, ambiguous entity spans, and a small BiGRU tagger.

Each sequence has ``length`` tokens from a vocabulary of :data:`VOCAB_SIZE`: :data:`NUM_TRIGGERS` *trigger* tokens
(ids ``0 … 9``), :data:`NUM_ENTITY_WORDS` *entity words* (ids ``10 … 21``) and the other words (``22 … 63``). The
background is drawn uniformly from the entity and other words (no triggers), so entity words appear everywhere as
distractors. The sequence is cut into ``spans`` equal segments and each segment gets one *candidate* at a random
offset: a trigger ``t``, a run of 1–3 entity words, and an other word that ends the run. The run is an entity (label
1 on each of its tokens) with probability :data:`TRIGGER_RATES` ``[t]`` (0.05, 0.15, …, 0.95): the hidden pattern is
"a run of entity words right after a trigger", and how likely it is an entity depends on the trigger, as context
words make a mention ambiguous in real NER. Every other token is labelled 0. The Bayes posterior of a token is
therefore its trigger's rate inside a candidate run and 0 elsewhere (``posterior``), so no tagger reaches F1 = 1
and the decision threshold matters. With the defaults (``length=20``, ``spans=1``) about 5 % of the tokens are
entity tokens (one run of mean length 2 per 20 tokens, an entity half of the time).

Used by the notebook ``dice_loss_imbalanced`` (with :class:`BiGRUTagger`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

__all__ = [
    "NUM_ENTITY_WORDS",
    "NUM_TRIGGERS",
    "TRIGGER_RATES",
    "VOCAB_SIZE",
    "BiGRUTagger",
    "TaggingSplit",
    "TaggingTask",
    "tagging_task",
]

VOCAB_SIZE = 64
NUM_TRIGGERS = 10
NUM_ENTITY_WORDS = 12
#: the probability that the run after trigger ``t`` is an entity
TRIGGER_RATES = tuple(0.05 + 0.1 * t for t in range(NUM_TRIGGERS))
MAX_RUN = 3


@dataclass
class TaggingSplit:
    """``tokens`` (n, length) int64, ``labels`` (n, length) int64 in {0, 1}, ``posterior`` (n, length) float64:
    the Bayes probability that the token is an entity token."""

    tokens: Tensor
    labels: Tensor
    posterior: Tensor

    def to(self, device: torch.device | str) -> TaggingSplit:
        """The same split on ``device``."""
        return TaggingSplit(self.tokens.to(device), self.labels.to(device), self.posterior.to(device))


@dataclass
class TaggingTask:
    """The ``train``, ``val`` and ``test`` splits of one draw."""

    train: TaggingSplit
    val: TaggingSplit
    test: TaggingSplit

    def to(self, device: torch.device | str) -> TaggingTask:
        """The same task on ``device``."""
        return TaggingTask(self.train.to(device), self.val.to(device), self.test.to(device))


def _split(n: int, length: int, spans: int, g: torch.Generator) -> TaggingSplit:
    segment = length // spans
    words = torch.arange(NUM_TRIGGERS, VOCAB_SIZE)  # entity and other words: the background
    tokens = words[torch.randint(0, len(words), (n, length), generator=g)]
    labels = torch.zeros(n, length, dtype=torch.int64)
    posterior = torch.zeros(n, length, dtype=torch.float64)
    rates = torch.tensor(TRIGGER_RATES, dtype=torch.float64)
    rows = torch.arange(n)
    for k in range(spans):
        trigger = torch.randint(0, NUM_TRIGGERS, (n,), generator=g)
        run = torch.randint(1, MAX_RUN + 1, (n,), generator=g)
        start = k * segment + torch.randint(0, segment - (MAX_RUN + 1), (n,), generator=g)
        entity = torch.rand(n, generator=g, dtype=torch.float64) < rates[trigger]
        entity_words = torch.randint(NUM_TRIGGERS, NUM_TRIGGERS + NUM_ENTITY_WORDS, (n, MAX_RUN), generator=g)
        end_word = torch.randint(NUM_TRIGGERS + NUM_ENTITY_WORDS, VOCAB_SIZE, (n,), generator=g)
        tokens[rows, start] = trigger
        for j in range(MAX_RUN):
            inside = j < run
            at = start + 1 + j
            tokens[rows[inside], at[inside]] = entity_words[inside, j]
            labels[rows[inside], at[inside]] = entity[inside].long()
            posterior[rows[inside], at[inside]] = rates[trigger[inside]]
        tokens[rows, start + 1 + run] = end_word
    return TaggingSplit(tokens, labels, posterior)


def tagging_task(
    seed: int, *, train: int = 4000, val: int = 1000, test: int = 2000, length: int = 20, spans: int = 1
) -> TaggingTask:
    """Draw the train, validation and test sequences (in that order) from one generator seeded ``seed``.

    ``length // spans`` must leave room for a candidate (``MAX_RUN + 2`` tokens) at more than one offset;
    ``ValueError`` otherwise, or for a split size or ``spans`` below 1.
    """
    for name, value in (("train", train), ("val", val), ("test", test), ("spans", spans)):
        if value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}")
    if length // spans <= MAX_RUN + 2:
        raise ValueError(f"length // spans must exceed {MAX_RUN + 2}, got length={length}, spans={spans}")
    g = torch.Generator().manual_seed(seed)
    return TaggingTask(*(_split(n, length, spans, g) for n in (train, val, test)))


class BiGRUTagger(nn.Module):
    """Token embedding (``embed``), a one-layer bidirectional GRU (``hidden`` per direction) and a linear score
    per token: ``(B, length)`` token ids → ``(B, length)`` logits of the entity class."""

    def __init__(self, vocab_size: int = VOCAB_SIZE, embed: int = 16, hidden: int = 32):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed)
        self.gru = nn.GRU(embed, hidden, batch_first=True, bidirectional=True)
        self.score = nn.Linear(2 * hidden, 1)

    def forward(self, tokens: Tensor) -> Tensor:
        states, _ = self.gru(self.embedding(tokens))
        return self.score(states).squeeze(-1)
