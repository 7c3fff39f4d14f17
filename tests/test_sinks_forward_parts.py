"""The forward group's parts on their own (SPEC §5, issue 6): breaker, backoff, config.

The breaker and the backoff with their own clocks and random numbers; the
group's config, whose errors name the key, and the example file's group.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from logcaster.config import load_config, validate
from logcaster.exceptions import ConfigError
from logcaster.sinks.forward.resilience import Backoff, Breaker

# -- the parts, with their own clocks ---------------------------------------------


def test_breaker_opens_after_threshold_then_half_open_trial_closes_it() -> None:
    now = [0.0]
    b = Breaker(
        failure_threshold=3, open_s=1.0, max_open_s=4.0, clock=lambda: now[0], rng=lambda: 1
    )
    assert b.allows() and not b.failure() and not b.failure()
    assert b.failure() and b.state == "open" and not b.allows()
    now[0] = 1.0
    assert b.allows()
    assert b.state == "half_open"  # type: ignore[comparison-overlap]  # allows() moved it
    assert b.failure() and b.state == "open"  # a failed trial: open again, longer
    now[0] = 2.9
    assert not b.allows()
    now[0] = 3.0
    assert b.allows() and b.success() and b.state == "closed"
    assert (b.opens, b.closes) == (2, 1)
    assert not b.failure() and b.state == "closed"  # the count starts again


def test_backoff_doubles_with_jitter_up_to_the_cap() -> None:
    lo = Backoff(0.1, 1.0, rng=lambda: 0.0)
    hi = Backoff(0.1, 1.0, rng=lambda: 1.0)
    assert [round(lo.next(), 3) for _ in range(6)] == [0.05, 0.1, 0.2, 0.4, 0.5, 0.5]
    assert [round(hi.next(), 3) for _ in range(6)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    hi.reset()
    assert hi.next() == 0.1


def test_forward_config_errors_name_the_key() -> None:
    ok = {"name": "g", "primaries": [{"url": "tcp://127.0.0.1:1?ack=1"}]}
    assert validate({"forward": [ok]}).forward[0].min_success == 1
    cases = [
        ({**ok, "primaries": [{"url": "udp://x:1"}]}, "forward.0.primaries.0.url"),
        ({**ok, "primaries": [{"url": "tcp://x"}]}, "forward.0.primaries.0.url"),
        ({**ok, "primaries": [{"url": "tcp://x:1?acks=1"}]}, "forward.0.primaries.0.url"),
        ({**ok, "min_success": 2}, "forward.0.min_success"),
        ({**ok, "primaries": []}, "forward.0.primaries"),
        ({**ok, "name": "a b"}, "forward.0.name"),
        ({**ok, "spool_policy": "reject"}, "forward.0.spool_policy"),
    ]
    for bad, key in cases:
        with pytest.raises(ConfigError) as err:
            validate({"forward": [bad]})
        assert err.value.key == key, (bad, err.value)
    with pytest.raises(ConfigError) as err:
        validate({"forward": [ok, ok]})
    assert err.value.key == "forward.1.name"


def test_the_example_group_in_the_example_file_is_valid_and_all_defaults() -> None:
    example = Path(__file__).resolve().parent.parent / "logcaster.example.yaml"
    text = example.read_text(encoding="utf-8")
    block = text[text.index("# forward:\n") :]
    doc = yaml.safe_load("\n".join(line[2:] for line in block.splitlines()))
    config = validate(doc)
    g = config.forward[0]
    defaults = validate(
        {"forward": [{"name": g.name, "primaries": [{"url": g.primaries[0].url}]}]}
    ).forward[0]
    assert g.primaries[0] == defaults.primaries[0]
    fields = set(type(g).__struct_fields__) - {"primaries", "backups"}
    assert {f: getattr(g, f) for f in fields} == {f: getattr(defaults, f) for f in fields}
    assert load_config(example, environ={}).forward == []
