"""Slack notifier: one Block Kit message per report, posted to an incoming webhook.

The message has a header and a section of fields (rule, priority, namespace and pod or node).
Sections follow with the actions and their outcomes, the notes and the alert's output in a code
block, then a context line. A top-level ``text`` is what Slack shows in notifications. Slack
rejects a message whose parts exceed the Block Kit limits, so every text is cut to its limit
with a visible marker. Slack returns 200 with the body ``ok``; errors come back as 4xx with a short
code such as ``invalid_blocks``.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp

from responder.notify import render
from responder.notify.base import Report
from responder.notify.config import SlackConfig, check_http_url
from responder.notify.delivery import Clock, HttpPoster, RetryPolicy, Sleep, bind_logger

# Block Kit limits as Slack's Block Kit reference states them for the header, section and
# context blocks and the message (docs.slack.dev/reference/block-kit/blocks).
HEADER_TEXT_MAX = 150
SECTION_TEXT_MAX = 3000
FIELD_COUNT_MAX = 10
FIELD_TEXT_MAX = 2000
CONTEXT_ELEMENTS_MAX = 10
CONTEXT_TEXT_MAX = 3000
BLOCKS_MAX = 50
# Slack truncates a top-level text longer than 40,000 characters. A notification preview needs
# far less, and this fallback holds only the title and the target.
FALLBACK_TEXT_MAX = 3000

# NOTE: lengths are counted in Unicode code points. Slack does not say how it counts, so an
# output made mostly of characters outside the Basic Multilingual Plane might still be rejected.


def _mrkdwn(text: str) -> dict[str, Any]:
    # verbatim stops Slack from turning bare names such as @channel or #general into
    # mentions and links, which escaping alone does not prevent.
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": _mrkdwn(text)}


def _labelled(label: str, value: str, limit: int) -> str:
    heading = f"*{label}*\n"
    return heading + render.cut(render.escape_mrkdwn(value), limit - len(heading))


def _list_section(label: str, lines: list[str]) -> dict[str, Any]:
    return _section(_labelled(label, "\n".join(f"• {line}" for line in lines), SECTION_TEXT_MAX))


def build_message(report: Report, config: SlackConfig) -> dict[str, Any]:
    """Build the webhook payload for ``report``, with every text within Slack's limits."""
    # plain_text is never parsed as markup or mentions, so the header needs no escaping.
    header = {
        "type": "header",
        "text": {
            "type": "plain_text",
            "text": render.cut(render.title(report), HEADER_TEXT_MAX),
            "emoji": False,
        },
    }
    fields = [
        _mrkdwn(_labelled(fact.label, fact.value, FIELD_TEXT_MAX)) for fact in render.facts(report)
    ]
    blocks: list[dict[str, Any]] = [
        header,
        {"type": "section", "fields": fields[:FIELD_COUNT_MAX]},
    ]
    if report.description:
        blocks.append(_section(_labelled("Playbook", report.description, SECTION_TEXT_MAX)))
    blocks.append(_list_section("Actions", render.action_lines(report)))
    if report.notes:
        blocks.append(_list_section("Notes", list(report.notes)))

    heading = "*Output*\n"
    output = report.alert.output or "(empty)"
    blocks.append(
        _section(heading + render.code_block_mrkdwn(output, SECTION_TEXT_MAX - len(heading)))
    )

    context = [f"alert id {report.alert_id}", "sent by falco-responder"]
    if report.alert.tags:
        context.append("tags: " + ", ".join(report.alert.tags))
    blocks.append(
        {
            "type": "context",
            "elements": [
                _mrkdwn(render.cut(render.escape_mrkdwn(text), CONTEXT_TEXT_MAX))
                for text in context[:CONTEXT_ELEMENTS_MAX]
            ],
        }
    )
    # The layout above has at most seven blocks, well under BLOCKS_MAX.

    message: dict[str, Any] = {
        "text": render.cut(render.escape_mrkdwn(_fallback_text(report)), FALLBACK_TEXT_MAX),
        "blocks": blocks,
        # Link previews would make Slack fetch URLs from the alert text, which an attacker chooses.
        "unfurl_links": False,
        "unfurl_media": False,
    }
    if config.channel is not None:
        message["channel"] = config.channel
    if config.username is not None:
        message["username"] = config.username
    return message


def _fallback_text(report: Report) -> str:
    target = report.alert.target
    where = f" on {target}" if target is not None else ""
    return f"{render.title(report)}{where}"


class SlackNotifier:
    """Posts each report to a Slack incoming webhook, retrying as the config allows."""

    def __init__(
        self,
        name: str,
        config: SlackConfig,
        *,
        session: aiohttp.ClientSession,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = time.time,
    ) -> None:
        """Check the URL (raising ``ConfigError``) and prepare the poster.

        ``sleep`` and ``clock`` exist so that tests can observe retry waits without waiting.
        """
        self.name = name
        self._config = config
        url = check_http_url(name, "webhook_url", config.webhook_url)
        self._poster = HttpPoster(
            name,
            url,
            session=session,
            timeout_s=config.timeout_s,
            policy=RetryPolicy(max_retries=config.max_retries, max_wait_s=config.max_retry_wait_s),
            sleep=sleep,
            clock=clock,
            show_error_code=True,
        )

    def __repr__(self) -> str:
        return f"SlackNotifier(name={self.name!r})"

    async def send(self, report: Report) -> None:
        """Post the report; raise ``NotifyError`` when Slack did not accept it."""
        log = bind_logger(self.name, report)
        body = json.dumps(build_message(report, self._config), ensure_ascii=False).encode()
        await self._poster.deliver(body, _json_headers, log)

    async def close(self) -> None:
        """Release nothing: the HTTP session belongs to the caller, who closes it."""


def _json_headers() -> dict[str, str]:
    return {"Content-Type": "application/json; charset=utf-8"}
