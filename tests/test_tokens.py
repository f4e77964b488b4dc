from __future__ import annotations

import numpy as np
import pytest
import torch

from monosemantic.errors import UserError
from monosemantic.store.tokens import parse_tokens, select_rows


def _hidden() -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    h = torch.randn(3, 5, 4)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 1, 0, 0, 0]], dtype=torch.bool)
    ids = torch.arange(15).view(3, 5)
    return {"a": h, "b": -h}, mask, ids


def test_all_keeps_real_tokens_in_order() -> None:
    hidden, mask, ids = _hidden()
    rows = select_rows(hidden, mask, ids, "all", np.array([10, 11, 12]), has_cls=True)
    expected = torch.cat([hidden["a"][0, :3], hidden["a"][1], hidden["a"][2, :2]])
    assert torch.equal(rows.acts["a"], expected) and torch.equal(rows.acts["b"], -expected)
    assert rows.item.tolist() == [10] * 3 + [11] * 5 + [12] * 2
    assert rows.position.tolist() == [0, 1, 2, 0, 1, 2, 3, 4, 0, 1]
    assert rows.token.tolist() == [0, 1, 2, 5, 6, 7, 8, 9, 10, 11]


def test_patches_drop_the_cls_token() -> None:
    hidden, mask, ids = _hidden()
    rows = select_rows(hidden, mask, ids, "patches", np.array([10, 11, 12]), has_cls=True)
    expected = torch.cat([hidden["a"][0, 1:3], hidden["a"][1, 1:], hidden["a"][2, 1:2]])
    assert torch.equal(rows.acts["a"], expected)
    assert rows.position.tolist() == [1, 2, 1, 2, 3, 4, 1]
    with pytest.raises(UserError, match="no CLS token"):
        select_rows(hidden, mask, ids, "patches", np.arange(3), has_cls=False)


def test_pooling_ignores_padding() -> None:
    hidden, mask, ids = _hidden()
    mean = select_rows(hidden, mask, ids, "mean", np.arange(3), has_cls=True).acts["a"]
    mx = select_rows(hidden, mask, ids, "max", np.arange(3), has_cls=True).acts["a"]
    assert torch.allclose(mean[0], hidden["a"][0, :3].mean(0))
    assert torch.allclose(mx[2], hidden["a"][2, :2].amax(0))
    cls = select_rows(hidden, mask, ids, "cls", np.arange(3), has_cls=True)
    assert torch.equal(cls.acts["a"], hidden["a"][:, 0])


def test_random_k_is_seeded_per_item_and_within_real_tokens() -> None:
    hidden, mask, ids = _hidden()
    r1 = select_rows(hidden, mask, ids, "random-2", np.arange(3), has_cls=True, seed=5)
    r2 = select_rows(hidden, mask, ids, "random-2", np.arange(3), has_cls=True, seed=5)
    assert torch.equal(r1.position, r2.position)
    assert r1.item.tolist() == [0, 0, 1, 1, 2, 2]
    for item, pos in zip(r1.item.tolist(), r1.position.tolist(), strict=True):
        assert mask[item, pos]


def test_bad_modes() -> None:
    with pytest.raises(UserError, match="unknown token selection 'some'"):
        parse_tokens("some")
    with pytest.raises(UserError, match="no CLS token"):
        hidden, mask, ids = _hidden()
        select_rows(hidden, mask, ids, "cls", np.arange(3), has_cls=False)


def test_skip_first_drops_position_zero_of_every_item() -> None:
    hidden = {"h": torch.arange(2 * 4 * 3, dtype=torch.float32).reshape(2, 4, 3)}
    mask = torch.tensor([[True, True, True, False], [True, True, True, True]])
    rows = select_rows(hidden, mask, None, "skip-first", np.array([7, 8]), has_cls=False, seed=0)
    assert rows.item.tolist() == [7, 7, 8, 8, 8]
    assert rows.position.tolist() == [1, 2, 1, 2, 3]
    assert torch.equal(rows.acts["h"][0], hidden["h"][0, 1])
