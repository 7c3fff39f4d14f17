"""Seed 004's payment flow: balance check -> payment gateway -> order confirmation.

One flow is one request: its steps share a request id, a user id and a
correlation id while the `service` changes from step to step, as the seed's
multi-service logging context does. A step's outcome is the level the
generator drew for that event slot (so flows never skew the level mix):
INFO is a normal step, WARN a slow one (duration_ms above the 2 s slow-request
threshold of tail-aware sampling), ERROR a failed one, which ends the flow with
a stack trace. Steps of several flows interleave with other traffic.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from logcaster.simulate.catalog import SCENARIO_BY_KEY, SERVICE_BY_NAME, Scenario, Service

SLOW_MS = 2000  # seed 004's SLOW_REQUEST threshold


@dataclass(frozen=True)
class Step:
    name: str
    service: Service
    route: str
    scenario: Scenario  # what goes wrong when the step fails
    ok: str  # message of a normal step; {amount} is filled in
    slow: str  # message of a slow step; {ms} is filled in


STEPS: tuple[Step, ...] = (
    Step(
        "balance_check",
        SERVICE_BY_NAME["user-profile-api"],
        "/api/v1/accounts/balance",
        SCENARIO_BY_KEY["database"],
        "Balance check passed: ${amount} available",
        "Balance check slow: account ledger answered in {ms}ms",
    ),
    Step(
        "gateway",
        SERVICE_BY_NAME["payment-api"],
        "/api/v1/payments",
        SCENARIO_BY_KEY["payment"],
        "Payment gateway approved charge of ${amount}",
        "Payment gateway slow: Stripe answered in {ms}ms",
    ),
    Step(
        "order_confirmation",
        SERVICE_BY_NAME["order-service"],
        "/api/v1/orders/confirm",
        SCENARIO_BY_KEY["inventory"],
        "Order confirmed: payment of ${amount} captured",
        "Order confirmation slow: confirmed in {ms}ms",
    ),
)


class Flow:
    """One payment flow in progress."""

    __slots__ = ("amount", "correlation_id", "flow_id", "request_id", "step", "user_id")

    def __init__(
        self, flow_id: int, request_id: str, user_id: str, correlation_id: str, amount: str
    ) -> None:
        self.flow_id = flow_id
        self.request_id = request_id
        self.user_id = user_id
        self.correlation_id = correlation_id
        self.amount = amount
        self.step = 0


def step_message(
    rnd: random.Random, flow: Flow, step: Step, slow: bool
) -> tuple[str, tuple[tuple[str, str], ...]]:
    """Message and key=value pairs of a flow step that did not fail."""
    ms = rnd.randint(SLOW_MS + 1, 9000) if slow else rnd.randint(15, 600)
    text = step.slow.format(ms=ms) if slow else step.ok.format(amount=flow.amount)
    pairs = (
        ("flow", "payment"),
        ("flow_id", f"flow-{flow.flow_id}"),
        ("step", step.name),
        ("route", step.route),
        ("amount", flow.amount),
        ("duration_ms", str(ms)),
    )
    return text, pairs
