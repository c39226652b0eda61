"""Hand over when autonomy is lost: say what happened, hover or stop, and wait for a person.

Triggers are events (their ``type``): a follow that has searched for its target in vain (``target_lost``), a low
battery warning (``battery_low``), a lane the car cannot see well enough (``lane_lost``, from a lane behaviour that
reports it), a degraded link (``video_missing``: the camera stream is gone, autonomy is blind; ``input_stale``: no
fresh perception). On a trigger the pilot ends the behaviour (the keep-alive set-point then holds a hover / a stop),
holds the rest of the script, and reports ``handover``. The first command from a person (``voice``, ``keys``, ``web``)
ends the wait (``taken_over``, with how long the person took) and runs; the script then goes on. Nobody within
``timeout_s``: ``handover_timeout``, and the drone lands / the car stops (when in doubt: hover, then land).

Hard limits stay with the safety supervisor: a critical battery or a lost link lands without waiting for anybody.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Event type -> what the pilot says happened.
TRIGGERS = {
    "target_lost": "target lost",
    "battery_low": "battery low",
    "lane_lost": "lane lost",
    "video_missing": "camera lost",
    "input_stale": "no fresh perception",
}
PERSON_SOURCES = ("voice", "keys", "web")
HANDOVER_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Wait:
    reason: str  # the trigger's event type
    detail: str
    since_t_s: float


class HandOver:
    def __init__(self, timeout_s: float = HANDOVER_TIMEOUT_S, triggers: dict[str, str] | None = None) -> None:
        self.timeout_s = timeout_s
        self.triggers = dict(TRIGGERS if triggers is None else triggers)
        self.waiting: Wait | None = None
        #: Seconds each completed hand-over waited for its person (None: nobody came, the pilot landed / stopped).
        self.waits: list[tuple[str, float | None]] = []

    def trigger(self, type_: str, detail: str, t_s: float) -> str | None:
        """The ``handover`` event's detail if the event ``type_`` starts a hand-over now, else None."""
        if type_ not in self.triggers or self.waiting is not None:
            return None
        self.waiting = Wait(type_, detail, t_s)
        return f"{self.triggers[type_]}: {detail}; waiting for a person"

    def person(self, source: str, text: str, t_s: float) -> str | None:
        """The ``taken_over`` event's detail if a person's command ``text`` ends the wait, else None."""
        if self.waiting is None or source not in PERSON_SOURCES:
            return None
        waited = t_s - self.waiting.since_t_s
        self.waits.append((self.waiting.reason, waited))
        self.waiting = None
        return f"{source} after {waited:.1f} s: {text}"

    def timed_out(self, t_s: float) -> str | None:
        """The ``handover_timeout`` event's detail when nobody came in time, else None."""
        if self.waiting is None or t_s - self.waiting.since_t_s < self.timeout_s:
            return None
        self.waits.append((self.waiting.reason, None))
        self.waiting = None
        return f"nobody took over in {self.timeout_s:g} s"
