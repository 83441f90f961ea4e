"""`page_columns.value_texts` writes loose values (tags) as `values.tag_value_text` does, or
leaves the page to it: checked on random values of every JSON type, one at a time and in pages.
"""

import random
from typing import Any

import pytest
from kore_sessions.source.api.page_columns import value_texts
from kore_sessions.source.api.values import tag_value_text

pytestmark = pytest.mark.unit

# Values whose texts the columnar path must write itself (a page of them is never left over).
PLAIN_VALUES: list[Any] = [
    "Pay Bill", "", "inf", "True", "Zürich", "+13744293529", 0, -12, 2**63 - 1, -(2**63), 3.5, -0.0,
    0.1, 60.47, 123456.789, True, False, None, {"items": 5, "total": 60.47}, {"b": 1, "a": [1.0, None]},
    [3, "a", None, True], {}, [],
]  # fmt: skip


def random_scalar(rng: random.Random) -> Any:
    """A JSON scalar of any kind, with the floats and integers where texts tend to differ."""
    pick = rng.randrange(9)
    if pick == 0:
        return rng.choice(["", "x", "inf", "nan", "True", "null", "Zürich", "a\x01b", "1e5", "\u2028"])
    if pick == 1:
        return rng.choice(
            [0, 1, -1, 2**53 + 1, 2**63 - 1, -(2**63), 2**64, 2**70, rng.randrange(-(10**9), 10**9)]
        )
    if pick == 2:
        return rng.choice([True, False, None])
    if pick == 3:
        return rng.choice(
            [0.0, -0.0, 1e16, 1e-5, 1e-4, 1.5e-7, 1e22, 9999999999999998.0, float("inf"), float("nan")]
        )
    sign = rng.choice([1, -1])
    return (
        sign * 10 ** rng.uniform(-9, 19) if pick < 7 else round(rng.uniform(-1e6, 1e6), rng.randrange(0, 8))
    )


def random_value(rng: random.Random, depth: int = 0) -> Any:
    """A JSON value: a scalar, or an object or array of them (nested at most twice)."""
    pick = rng.randrange(6)
    if depth >= 2 or pick < 4:
        return random_scalar(rng)
    if pick == 4:
        return [random_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    keys = rng.sample(["b", "a", "é", "z", "10", "9"], rng.randrange(4))
    return {key: random_value(rng, depth + 1) for key in keys}


def assert_written_alike(values: list[Any]) -> bool:
    """value_texts gives tag_value_text's texts and kinds, or None; whether it wrote them."""
    written = value_texts(values)
    if written is None:
        return False
    texts, kinds = written
    expected = [tag_value_text(value) for value in values]
    assert texts.to_pylist() == [text for text, _ in expected]
    assert kinds.to_pylist() == [kind for _, kind in expected]
    return True


def test_plain_values_are_written_on_the_columnar_path() -> None:
    assert assert_written_alike(PLAIN_VALUES)
    assert assert_written_alike(["only", "strings"])
    assert all(assert_written_alike([value]) for value in PLAIN_VALUES)


@pytest.mark.parametrize("seed", range(4))
def test_random_values_are_written_alike_or_left_to_the_record_transform(seed: int) -> None:
    rng = random.Random(seed)
    values = [random_value(rng) for _ in range(3000)]
    written = sum(assert_written_alike([value]) for value in values)
    assert written > len(values) // 2  # most take the columnar path: the check is not vacuous
    for start in range(0, len(values), 50):
        assert_written_alike(values[start : start + 50])


@pytest.mark.parametrize(
    "value", [float("inf"), float("-inf"), float("nan"), 2**70, 1e16, {"a": 1e-7}, {"c": "ü"}]
)
def test_values_whose_texts_differ_are_left_to_the_record_transform(value: Any) -> None:
    assert value_texts(["plain", value]) is None
