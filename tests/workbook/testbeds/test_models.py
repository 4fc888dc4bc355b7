"""The reference models: the GRU reader consumes its steps in order and returns the last hidden state."""

import pytest
import torch
from torch import nn

from regkit.workbook.testbeds import classification as testbed
from regkit.workbook.testbeds import gru_classifier, mlp
from regkit.workbook.testbeds.models import GRUReader, MLPEnsemble


def test_gru_reader_is_the_last_hidden_state_of_a_gru_over_the_chunks():
    torch.manual_seed(0)
    reader = GRUReader(4, 3, 5)
    x = torch.randn(6, 12)
    h = torch.zeros(6, 5)
    cell = nn.GRUCell(3, 5)
    cell.load_state_dict({k.removesuffix("_l0"): v for k, v in reader.gru.state_dict().items()})
    for step in x.reshape(6, 4, 3).unbind(1):  # step t is features t·3 … t·3 + 2
        h = cell(step, h)
    torch.testing.assert_close(reader(x), h)


def test_gru_classifier_ends_in_its_linear_head_and_checks_its_input():
    torch.manual_seed(0)
    model = gru_classifier(8, 5, 16, 10)
    assert isinstance(model[-1], nn.Linear) and model[-1].weight.shape == (10, 16)
    assert model(torch.randn(3, 40)).shape == (3, 10)
    with pytest.raises(ValueError, match="x must be"):
        model(torch.randn(3, 41))
    with pytest.raises(ValueError, match="positive integers"):
        gru_classifier(0, 5, 16, 10)
    with pytest.raises(ValueError, match="classes"):
        gru_classifier(8, 5, 16, 0)
    with pytest.raises(ValueError, match="sizes"):
        mlp(3)


@pytest.mark.parametrize(("name", "d"), [("digits", 64), ("mnist1d", 40)])
@pytest.mark.parametrize("kind", testbed.KINDS)
def test_every_testbed_model_takes_flat_inputs_and_ends_in_a_linear_head(name, d, kind):
    model = testbed.make_model(name, kind, seed=0)
    assert isinstance(model[-1], nn.Linear) and model[-1].out_features == 10
    assert model(torch.randn(2, d)).shape == (2, 10)
    torch.testing.assert_close(testbed.make_model(name, kind, seed=0)(torch.ones(1, d)), model(torch.ones(1, d)))
    with pytest.raises(ValueError, match="kind"):
        testbed.make_model(name, "lstm")


def test_mlp_ensemble_members_are_independent_mlps():
    ensemble = MLPEnsemble([3, 4, 3], 2, 8, 8, 2)
    x = torch.randn(3 * 5, 2)
    out = ensemble(x)
    for m in range(3):
        torch.testing.assert_close(out[m * 5 : (m + 1) * 5], ensemble.member(m)(x[m * 5 : (m + 1) * 5]))
    torch.testing.assert_close(ensemble.weights[0][0], ensemble.weights[0][2])  # same seed, same init
    assert not torch.equal(ensemble.weights[0][0], ensemble.weights[0][1])
    torch.testing.assert_close(ensemble.weights[1][1], MLPEnsemble([4], 2, 8, 8, 2).weights[1][0])
    bound = 8**-0.5
    assert float(ensemble.weights[1].detach().abs().max()) <= bound
    with pytest.raises(ValueError, match="M·N"):
        ensemble(torch.randn(7, 2))
    with pytest.raises(ValueError, match="layer widths"):
        MLPEnsemble([], 2, 2)


def test_mlp_ensemble_members_train_independently():
    """A summed loss trains member m exactly as its loss alone would (Adam is elementwise)."""
    torch.manual_seed(0)
    ensemble, alone = MLPEnsemble([0, 1], 1, 4, 1), MLPEnsemble([1], 1, 4, 1)
    x, y = torch.randn(2 * 6, 1), torch.randn(2 * 6, 1)
    opt_e, opt_a = torch.optim.Adam(ensemble.parameters(), 1e-2), torch.optim.Adam(alone.parameters(), 1e-2)
    for _ in range(5):
        for model, opt, rows in ((ensemble, opt_e, slice(0, 12)), (alone, opt_a, slice(6, 12))):
            loss = (model(x[rows]) - y[rows]).pow(2).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
    torch.testing.assert_close(ensemble(x)[6:], alone(x[6:]))
