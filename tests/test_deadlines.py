"""The one deadline plan: computed once per call, asked by every layer, and covering the whole call,
Hub look-ups and their retries included."""
from __future__ import annotations

import pytest

from hf_textgen import Client, Timeouts
from hf_textgen.deadlines import FIRST_TOKEN, TOTAL, Deadlines
from hf_textgen.errors import StreamTimeoutError

from support import ScriptedServer, silent

MESSAGES = [{"role": "user", "content": "Hi"}]


def test_the_plan_names_the_deadline_that_applies() -> None:
    plan = Deadlines.start(Timeouts(connect=1, read=5, total=10, first_token=3), now=100.0)
    assert (plan.total_at, plan.first_token_at) == (110.0, 103.0)
    assert plan.due(started=False) == (103.0, FIRST_TOKEN) and plan.due(started=True) == (110.0, TOTAL)
    assert plan.passed(False, now=103.0) == FIRST_TOKEN and plan.passed(True, now=103.0) is None
    assert plan.read_timeout(False, now=101.0) == 2.0 and plan.read_timeout(True, now=101.0) == 5.0


def test_total_wins_a_tie_and_none_means_no_deadline() -> None:
    tie = Deadlines.start(Timeouts(total=2, first_token=2), now=0.0)
    assert tie.due(False) == (2.0, TOTAL)
    free = Deadlines.start(Timeouts(), now=0.0)
    assert free.due(False) is None and free.passed(False, now=1e12) is None and free.read_timeout(False, 5.0) == free.read


def test_the_total_deadline_bounds_hub_look_ups_and_their_retries() -> None:
    with ScriptedServer(silent) as hub:  # a Hub that never answers
        client = Client(api_key="hf_deadlinetoken123", hub_url=hub.url, router_url=hub.url)
        with pytest.raises(StreamTimeoutError) as raised:
            client.complete("org/model", MESSAGES, timeout=Timeouts(connect=1, read=0.3, total=0.5))
    # without the plan, three attempts would each wait their 0.3 s and say "no answer within 0.3 s"
    assert "total deadline passed" in str(raised.value) and "provider mapping of 'org/model'" in str(raised.value)
    assert len(hub.requests("GET")) <= 2


def test_get_mapping_is_bounded_by_the_total_deadline_too() -> None:
    with ScriptedServer(silent) as hub:
        with pytest.raises(StreamTimeoutError, match="total deadline passed"):
            Client(api_key="hf_deadlinetoken123", hub_url=hub.url).get_mapping_sync("org/model", timeout=Timeouts(read=0.3, total=0.4))
