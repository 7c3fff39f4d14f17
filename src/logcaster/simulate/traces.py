"""Java- and Python-style stack traces in seed 002's exact shapes, as templates.

A trace is built once per (service, scenario, variant) when the generator
starts; per event only its ids (and, for Java, the thread and route) are put in
with one `%`. The header line is not part of the template: it carries the
event's time and pod and is written by the formatter (formats.py):

    [ERROR] 2026-01-19 15:30:01.234 payment-api/v2.3.1 pod/payment-api-7d8f9c-abc123:␠
    ERROR: auth-service/v3.1.0 pod/auth-service-9p4q5r-ghi345␠

A whole trace, header included, is 15-30 lines. Every line after the header
matches one of LogCaster's continuation rules, so the server joins it into one
event; the last line, `Request ID: …, User ID: …, Correlation ID: …`, gives the
event its ids (seed 002: every log carries them, Java traces too).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from logcaster.simulate.catalog import Scenario, Service

MIN_LINES = 15
MAX_LINES = 30

_JAVA_APP_FRAMES = (
    "service.BusinessService.executeTransaction(BusinessService.java:{n})",
    "service.BusinessService.process(BusinessService.java:{n})",
    "controller.ApiController.handleRequest(ApiController.java:{n})",
    "repository.JdbcRepository.save(JdbcRepository.java:{n})",
    "client.UpstreamClient.call(UpstreamClient.java:{n})",
)
_JAVA_LIB_FRAMES = (
    "jdk.internal.reflect.GeneratedMethodAccessor{n}.invoke(Unknown Source)",
    "org.springframework.web.servlet.DispatcherServlet.doDispatch(DispatcherServlet.java:1032)",
    "org.springframework.web.servlet.FrameworkServlet.service(FrameworkServlet.java:897)",
    "org.springframework.aop.framework.ReflectiveMethodInvocation.proceed"
    "(ReflectiveMethodInvocation.java:186)",
    "jakarta.servlet.http.HttpServlet.service(HttpServlet.java:658)",
    "org.apache.catalina.core.ApplicationFilterChain.doFilter(ApplicationFilterChain.java:205)",
    "org.apache.tomcat.util.threads.TaskThread$WrappingRunnable.run(TaskThread.java:61)",
    "java.base/java.lang.Thread.run(Thread.java:840)",
)
_PY_APP_FRAMES = (
    ("/app/main.py", "<module>", "app.run()"),
    ("/app/{pkg}/application.py", "run", "self.process_request(request)"),
    ("/app/{pkg}/handlers.py", "process_request", "result = self.execute_business_logic(data)"),
    ("/app/{pkg}/services.py", "execute_business_logic", "return self.repository.load(key)"),
    ("/app/{pkg}/repository.py", "load", "row = self.session.execute(query).first()"),
    ("/app/{pkg}/middleware.py", "__call__", "return await self.app(scope, receive, send)"),
    ("/app/{pkg}/clients.py", "call", "response = self.session.post(url, json=payload)"),
)


@dataclass(frozen=True)
class TraceTemplate:
    """Everything after the header line, as a %-format.

    Java: `text % (thread, route_id, request_id, user_id, correlation_id)`;
    Python: `text % (request_id, user_id, correlation_id)`.
    """

    scenario: Scenario
    java: bool
    text: str
    lines: int  # of the whole trace, header included
    exception: str  # the exception line, for JSON output
    # The same parts for JSON output, split once here rather than per event.
    details: str = ""
    recovery: str = ""
    stack: str = ""  # the exception and its frames (Java) / the traceback (Python)


def _esc(text: str) -> str:
    return text.replace("%", "%%")


def _fill(rnd: random.Random, text: str, scenario: Scenario) -> str:
    return text.format(n=rnd.randint(*scenario.n_range), m=rnd.randint(*scenario.m_range))


def build(rnd: random.Random, service: Service, scenario: Scenario) -> TraceTemplate:
    """One trace of `service`'s style for `scenario`, of a random length in 15-30 lines."""
    head = [
        scenario.message,
        _fill(rnd, rnd.choice(scenario.details), scenario),
        rnd.choice(scenario.recovery),
    ]
    ids = "Request ID: %s, User ID: %s, Correlation ID: %s"
    if service.style == "java":
        lines, exception = _java(rnd, service, scenario, head)
        method = rnd.choice(("POST", "GET", "PUT"))
        thread = f"Thread: http-nio-8080-exec-%d, Request: {method} /api/v1/{service.resource}/%d"
        text = "\n".join(_esc(line) for line in lines) + "\n" + thread + "\n" + ids
        return TraceTemplate(scenario, True, text, len(lines) + 3, exception, *_parts(lines))
    lines, exception = _python(rnd, service, scenario, head)
    text = "\n".join(_esc(line) for line in lines) + "\n" + ids
    return TraceTemplate(scenario, False, text, len(lines) + 2, exception, *_parts(lines))


def _parts(lines: list[str]) -> tuple[str, str, str]:
    """Details, recovery action (without their labels) and the stack, from message-first lines."""
    details = lines[1].removeprefix("Details: ")
    return details, lines[2].removeprefix("Recovery Action: "), "\n".join(lines[3:])


def _java(
    rnd: random.Random, service: Service, scenario: Scenario, head: list[str]
) -> tuple[list[str], str]:
    total = rnd.randint(MIN_LINES, MAX_LINES)
    exception = scenario.java_exception
    lines = [*head, exception]
    # Fixed lines: header, the head, exception, Thread, Request ID (+ cause and "... N more").
    fixed = 1 + len(lines) + 2 + (2 if scenario.java_cause else 0)
    frames = total - fixed
    cause_frames = scenario.java_cause_frames
    n_cause = min(len(cause_frames), rnd.randint(1, 3)) if scenario.java_cause else 0
    base = f"com.cali.{service.package}."
    for i in range(frames - n_cause):
        if i < 2 or rnd.random() < 0.3:
            frame = base + rnd.choice(_JAVA_APP_FRAMES).format(n=rnd.randint(40, 420))
        else:
            frame = rnd.choice(_JAVA_LIB_FRAMES).format(n=rnd.randint(100, 999))
        lines.append("    at " + frame)
    if scenario.java_cause:
        lines.append(scenario.java_cause)
        lines.extend("    at " + frame for frame in cause_frames[:n_cause])
        lines.append(f"    ... {rnd.randint(12, 48)} more")
    return lines, exception


def _python(
    rnd: random.Random, service: Service, scenario: Scenario, head: list[str]
) -> tuple[list[str], str]:
    # Header, head, "Traceback", exception, Request ID: 7 lines, then 2 per frame.
    frames = rnd.randint((MIN_LINES - 7 + 1) // 2, (MAX_LINES - 7) // 2)
    lib = scenario.python_frames[: max(1, frames - 3)]
    app = [_PY_APP_FRAMES[0], *rnd.choices(_PY_APP_FRAMES[1:], k=frames - len(lib) - 1)]
    lines = [*head, "Traceback (most recent call last):"]
    for path, func, code in (*app, *lib):
        lines.append(
            f'  File "{path.format(pkg=service.package)}", line {rnd.randint(12, 640)}, in {func}'
        )
        lines.append("    " + code)
    lines.append(scenario.python_exception)
    return lines, scenario.python_exception
