"""Slack messages for notifications: Block Kit blocks plus a plain-text fallback.

Pure functions of a :class:`Notification`; nothing here talks to Slack. A thread reply
says what happened and why, with every fired rule's numbers (observed, reference, limit,
effect, z, p, sample counts), how long it held, links (dashboard, runbook) and what to
do. The parent message is a status card for one module's rollout, edited in place.
Limits respected: header text 150 characters, section text 3000, at most 10 fields and
50 blocks; mrkdwn special characters (&, <, >) are escaped in everything we did not write.
"""

from __future__ import annotations

import math
import urllib.parse
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from watchdog.model import unsettled_state
from watchdog.notifiers import Notification
from watchdog.rollout.approval import is_approval_wait

TERMINAL = {"rollback": "ROLLED BACK", "promote": "PROMOTED", "abort": "ABORTED"}
SEVERITY_EMOJI = {"critical": ":red_circle:", "warning": ":large_yellow_circle:",
                  "info": ":large_blue_circle:"}
ACTION_EMOJI = {"rollback": ":rewind:", "promote": ":white_check_mark:",
                "advance": ":arrow_forward:", "hold": ":double_vertical_bar:",
                "pause": ":pause_button:", "resume": ":arrow_forward:", "abort": ":no_entry:",
                "step_back": ":arrow_down_small:", "approve": ":ballot_box_with_check:"}
ADVICE = {
    "rollback": "V2 is out of traffic: V1 serves everything again, so the impact has "
                "stopped. Find the cause with the runbook and the dashboard before "
                "starting a new rollout.",
    "abort": "The rollout was stopped and V2 taken out of traffic. Check the reasons "
             "above before starting again.",
    "promote": "Nothing to do: V2 now serves all traffic.",
    "advance": "Nothing to do: the rules passed for the whole hold time.",
    "hold": "Nothing to do yet: the rollout stays at this stage until the rules pass. "
            "Check the dashboard; pause or roll back by hand if it looks wrong.",
    "step_back": "V2's share went down one stage (not to 0%): the failure policy steps "
                 "back before it rolls back. It advances again when healthy for the hold.",
    "approve": "A person approved the next step; the rollout takes it at its next healthy "
               "evaluation (its gates and checks still apply).",
    "awaiting_approval": "A person must approve the next step: `rollout-watchdog approve "
                         "MODULE --reason ...`, or the web view's Approve button. Until then "
                         "the rollout stays at this stage, still judged (a failure still "
                         "rolls it back).",
    "pause": "The rollout is paused and will not move until someone resumes it.",
    "resume": "The rollout is running again and will advance when healthy.",
    "alert_firing": "Watch the dashboard. While this fires the rollout does not advance; "
                    "a critical rule rolls it back on its own.",
    "alert_resolved": "Nothing to do: the rule passes again.",
    "inconclusive": "The data is missing or too sparse to judge, so the rollout holds. "
                    "Check that the metrics source is scraping V2.",
}
KNOWN = {"rule", "metric", "breached", "outcome", "summary", "observed", "reference", "limit",
         "effect", "z", "p_value", "n_v2", "n_ref", "se", "against", "above", "below",
         "baseline_id", "test"}
TIMES = {"held_for", "for_s", "duration", "active_at", "since", "fired_at", "stage_since"}
MAX_RULES = 30


@dataclass(frozen=True)
class SlackMessage:
    text: str  # fallback: notifications, screen readers, clients without blocks
    blocks: list[dict[str, Any]]

    def payload(self) -> dict[str, Any]:
        return {"text": self.text, "blocks": self.blocks}


def reply(n: Notification, dashboard_url: str | None = None) -> SlackMessage:
    """The message for one notification (a thread reply, or a webhook post)."""
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": _plain(f"{_emoji(n)} {n.title or n.kind}", 150)},
        {"type": "section", "fields": _fields(n)},
    ]
    if n.reasons:
        blocks.append(_mrkdwn_section("*Why*\n" + "\n".join(f"• {_esc(r)}" for r in n.reasons)))
    detailed, others = _split_rules(n)
    label = "Current value" if n.kind == "alert_resolved" else (
        "Rules that fired" if any(e.get("breached") for e in detailed)
        else "Rules without a verdict")
    if detailed:
        blocks.append(_mrkdwn_section(f"*{label}*"))
    blocks.extend(_mrkdwn_section(_rule_text(e)) for e in detailed[:MAX_RULES])
    if len(detailed) > MAX_RULES:
        blocks.append(_context(f"… and {len(detailed) - MAX_RULES} more rules"))
    if others:
        blocks.append(_context("Also checked: " + ", ".join(_rule_state(e) for e in others)))
    links = _links(n, dashboard_url)
    todo = ADVICE.get(_situation(n), "") if n.kind == "decision" else ADVICE.get(n.kind, "")
    if todo or links:
        text = f"*What to do*\n{todo}" if todo else ""
        blocks.append(_mrkdwn_section("\n".join(t for t in (text, links) if t)))
    if n.links.get("approve"):  # waiting for a person: the web view's Approve button
        blocks.append({"type": "actions", "elements": [{
            "type": "button", "style": "primary", "url": n.links["approve"][:3000],
            "action_id": "open_approve", "text": _plain("Approve in the web view", 75)}]})
    blocks.append(_context(f"rollout-watchdog · {_when(n.at)} · key `{_esc(n.key)}`"))
    return SlackMessage(_fallback(n, detailed, dashboard_url), blocks[:50])


def parent(n: Notification, started_at: float, dashboard_url: str | None = None,
           final: bool = False) -> SlackMessage:
    """The status card at the top of a module's rollout thread, as of notification ``n``."""
    status = TERMINAL.get(n.action or "", "") if final else ""
    status = status or {"pause": "paused", "awaiting_approval": "awaiting approval"}.get(
        _situation(n), "in progress")
    emoji = ({"ROLLED BACK": ":red_circle:", "PROMOTED": ":white_check_mark:",
              "ABORTED": ":no_entry:"}.get(status, ":large_blue_circle:"))
    where = _stage(n)
    lines = [f"{emoji} *{_esc(n.module)}* rollout — *{status}*",
             f"{where} · last update: {_esc(n.action or n.kind)} {_when(n.at)}"]
    if final and n.reasons:
        lines.append("\n".join(f"• {_esc(r)}" for r in n.reasons[:5]))
    link = dashboard_link(dashboard_url, n)
    tail = [f"Started {_when(started_at)}", f"ran {duration(n.at - started_at)}"
            if final else "updates in the thread"]
    if link:
        tail.append(f"<{link}|Dashboard>")
    blocks = [_mrkdwn_section("\n".join(lines)), _context(" · ".join(tail))]
    text = f"{n.module} rollout: {status} ({where})"
    return SlackMessage(text, blocks)


def awaits_approval(n: Notification) -> bool:
    """A hold decision journaled because the rollout waits for a person's approval."""
    return n.kind == "decision" and is_approval_wait(n.action or "", n.reasons)


def _situation(n: Notification) -> str:
    """The decision's action, or ``awaiting_approval`` for a hold that waits for one."""
    return "awaiting_approval" if awaits_approval(n) else (n.action or "")


def dashboard_link(template: str | None, n: Notification) -> str | None:
    if n.links.get("dashboard"):
        return n.links["dashboard"]
    if not template:
        return None
    return template.format_map({
        "module": urllib.parse.quote(n.module, safe=""), "at": int(n.at),
        "from_ms": int((n.at - 3600) * 1000), "to_ms": int((n.at + 600) * 1000),
        "stage": "" if n.stage is None else n.stage,
        "traffic_percent": "" if n.traffic_percent is None else f"{n.traffic_percent:g}",
        "key": urllib.parse.quote(n.key, safe="")})


def held_for(n: Notification) -> float | None:
    """How long the condition (or the stage) has held, from the evidence when it says."""
    for e in n.evidence:
        for key in ("held_for", "for_s", "duration"):
            if isinstance(e.get(key), int | float):
                return float(e[key])
        for key in ("active_at", "since", "fired_at", "stage_since"):
            if isinstance(e.get(key), int | float) and e[key] > 0:
                return max(0.0, n.at - float(e[key]))
    return None


def duration(seconds: float) -> str:
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600}h"


def number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return _esc(str(value))
    if isinstance(value, int):
        return str(value)
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    return f"{value:.4g}"


# pieces ------------------------------------------------------------------------------


def _emoji(n: Notification) -> str:
    if n.kind == "alert_resolved":
        return ":large_green_circle:"
    if n.kind == "inconclusive":
        return ":grey_question:"
    if n.kind == "decision" and n.action in ACTION_EMOJI:
        return ":red_circle:" if n.action == "rollback" else ACTION_EMOJI[n.action]
    return SEVERITY_EMOJI.get(n.severity, ":bell:")


def _stage(n: Notification) -> str:
    stage = "stage ?" if n.stage is None else f"stage {n.stage}"
    traffic = "?" if n.traffic_percent is None else f"{n.traffic_percent:g}"
    return f"{stage} · {traffic} % V2"


def _fields(n: Notification) -> list[dict[str, str]]:
    what = ("Decision", n.action or "?") if n.kind == "decision" else (
        "Alert", {"alert_firing": "firing", "alert_resolved": "resolved"}.get(n.kind, n.kind))
    stage = "?" if n.stage is None else str(n.stage)
    traffic = "?" if n.traffic_percent is None else f"{n.traffic_percent:g}"
    fields = [("Module", f"`{_esc(n.module)}`"), (what[0], _esc(what[1])),
              ("Stage · V2 traffic", f"{stage} · {traffic} %"), ("Severity", _esc(n.severity))]
    held = held_for(n)
    if held is not None:
        fields.append(("Held for", duration(held)))
    fields.append(("When", _when(n.at)))
    return [{"type": "mrkdwn", "text": f"*{k}*\n{v}"} for k, v in fields]


def _split_rules(n: Notification) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    if n.kind == "alert_resolved":
        return list(n.evidence), []
    fired = [e for e in n.evidence if e.get("breached") is True]
    if not fired:  # inconclusive, or a manual decision: the rules that hold it (a warming
        # or inapplicable rule holds nothing, so it is not a cause)
        fired = [e for e in n.evidence if e.get("breached") is None
                 and unsettled_state(e.get("outcome")) == "inconclusive"]
    return fired, [e for e in n.evidence if not any(e is f for f in fired)]


def _rule_text(e: dict[str, Any]) -> str:
    name = _esc(str(e.get("rule", "rule")))
    metric = f" · `{_esc(str(e['metric']))}`" if e.get("metric") else ""
    state = {True: ":red_circle: breached", False: ":large_green_circle: passing",
             None: _UNSETTLED.get(unsettled_state(e.get("outcome")), "")}.get(
        e.get("breached"), "")
    lines = [f"*{name}*{metric} — {state}".rstrip(" —")]
    ref = {"live_v1": "live V1", "baseline": "baseline"}.get(str(e.get("against")), "reference")
    if e.get("baseline_id") is not None:
        ref += f" #{number(e['baseline_id'])}"
    parts = []
    if "observed" in e:
        parts.append(f"observed *{number(e['observed'])}*")
    if "reference" in e:
        parts.append(f"vs {ref} *{number(e['reference'])}*")
    if isinstance(e.get("effect"), int | float) and math.isfinite(e["effect"]):
        parts.append(f"({e['effect']:+.1%})")
    if "limit" in e:
        parts.append(f"· limit *{number(e['limit'])}*")
    for key, word in (("above", "above"), ("below", "below")):
        if e.get(key) is not None:
            parts.append(f"· limit: {word} *{number(e[key])}*")
    if parts:
        lines.append(" ".join(parts))
    stats = [f"{label} {number(e[key]) if key != 'p_value' else _p(e[key])}"
             for key, label in (("z", "z ="), ("p_value", "p ="), ("test", "test"))
             if e.get(key) is not None]
    counts = [f"{number(e[k])} {label}" for k, label in (("n_v2", "V2"), ("n_ref", "ref"))
              if k in e]
    if counts:
        stats.append("n = " + " / ".join(counts))
    extras = [f"{_esc(k)} {_percent(v) if k == 'tolerance' else number(v)}"
              for k, v in e.items() if k not in KNOWN and k not in TIMES
              and isinstance(v, str | int | float) and not isinstance(v, bool)]
    if stats or extras:
        lines.append(" · ".join(stats + extras[:6]))
    if e.get("summary") and not parts:
        lines.append(f"_{_esc(str(e['summary']))}_")
    return "\n".join(lines)


_UNSETTLED = {"inconclusive": ":grey_question: inconclusive",
              "warming": ":hourglass_flowing_sand: warming up",
              "inapplicable": ":heavy_minus_sign: does not apply"}


def _rule_state(e: dict[str, Any]) -> str:
    mark = {True: "breached", False: "ok", None: unsettled_state(e.get("outcome"))}.get(
        e.get("breached"), "?")
    return f"{_esc(str(e.get('rule', '?')))} ({mark})"


def _links(n: Notification, dashboard_url: str | None) -> str:
    out = []
    dash = dashboard_link(dashboard_url, n)
    if dash:
        out.append(f":bar_chart: <{dash}|Dashboard>")
    if n.links.get("runbook_url"):
        out.append(f":book: <{n.links['runbook_url']}|Runbook>")
    out += [f"<{url}|{_esc(name)}>" for name, url in n.links.items()
            if name not in ("dashboard", "runbook_url", "approve") and url]
    return "   ".join(out)


def _fallback(n: Notification, fired: list[dict[str, Any]], dashboard_url: str | None) -> str:
    """Plain text for notifications and clients without blocks (URLs as Slack links)."""
    parts = [f"{_esc(n.title or n.kind)} ({_esc(n.module)}, {_stage(n)})."]
    parts += [f"{_esc(r)}." for r in n.reasons[:2]]
    for e in fired[:3]:
        nums = ", ".join(f"{k} {number(e[k])}" for k in ("observed", "reference", "limit")
                         if k in e)
        parts.append(f"{_esc(str(e.get('rule', 'rule')))}: "
                     f"{nums or _esc(str(e.get('summary', '')))}.")
    if n.links.get("runbook_url"):
        parts.append(f"Runbook: <{n.links['runbook_url']}>")
    if n.links.get("approve"):
        parts.append(f"Approve: <{n.links['approve']}>")
    dash = dashboard_link(dashboard_url, n)
    if dash:
        parts.append(f"Dashboard: <{dash}>")
    return " ".join(parts)[:3000]


def _percent(value: Any) -> str:
    return f"{value:.0%}" if isinstance(value, float) else number(value)


def _p(value: Any) -> str:
    return f"{value:.2g}" if isinstance(value, float) else number(value)


def _when(at: float) -> str:
    iso = datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"<!date^{int(at)}^{{date_short_pretty}} {{time_secs}}|{iso}>"


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _plain(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": text[: limit - 1] + "…" if len(text) > limit
            else text, "emoji": True}


def _mrkdwn_section(text: str) -> dict[str, Any]:
    if len(text) > 3000:
        text = text[:2999] + "…"
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text[:3000]}]}
