// edgepilot cockpit: one WebSocket carries state (JSON), video (binary: 4-byte sequence number + JPEG) and commands.
"use strict";
const $ = (id) => document.getElementById(id);
const token = new URLSearchParams(location.search).get("token");
let ws = null, me = null, speeds = null, ended = false, state = null, frames = 0;
const track = [];  // [t_s, x_cm, y_cm, z_cm, yaw_deg, battery_pct]

function send(message) {
  if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(message));
}
function command(text) { send({ type: "command", text: text }); }
function say(text) {
  $("message").textContent = text;
  clearTimeout(say.timer);
  say.timer = setTimeout(() => { $("message").textContent = ""; }, 5000);
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  ws = new WebSocket(scheme + location.host + "/ws" + (token ? "?token=" + encodeURIComponent(token) : ""));
  ws.binaryType = "arraybuffer";
  ws.onmessage = (event) => {
    if (typeof event.data === "string") onJson(JSON.parse(event.data));
    else onFrame(event.data);
  };
  ws.onclose = () => {
    setBadge("link", ended ? "run ended" : "page disconnected", "bad");
    if (!ended) setTimeout(connect, 1000);
  };
}

function onJson(message) {
  if (message.type === "hello") {
    me = message.you; speeds = message;
    track.length = 0;
    for (const p of message.history) track.push(p);
  } else if (message.type === "state") {
    onState(message);
  } else if (message.type === "error") {
    say(message.text);
  }
}

function onFrame(buffer) {
  const seq = new DataView(buffer).getUint32(0);
  const url = URL.createObjectURL(new Blob([new Uint8Array(buffer, 4)], { type: "image/jpeg" }));
  const video = $("video");
  video.onload = video.onerror = () => {
    URL.revokeObjectURL(url);
    send({ type: "ack", seq: seq });  // ready for the next frame: a slow page skips frames, nothing queues
  };
  video.src = url;
  video.dataset.seq = String(seq);
  frames += 1;
  $("no-video").style.display = "none";
}

function setBadge(id, text, level) {
  const badge = $(id);
  badge.textContent = text;
  badge.className = "badge " + (level || "");
}

const fmt = (v, digits) => (v === null || v === undefined ? "-" : Number(v).toFixed(digits));

function onState(s) {
  state = s;
  if (s.ended) { ended = true; setBadge("mode", "run ended: " + s.ended, "bad"); }
  else setBadge("mode", s.mode, s.mode === "emergency" ? "bad" : s.flying ? "ok" : "");
  $("vehicle").textContent = s.vehicle;
  if (s.replay) {  // a recording played back: a timeline instead of controls
    document.body.classList.add("replay");
    $("timeline").hidden = false;
    $("replay-progress").max = s.replay.total_s || 1;
    $("replay-progress").value = s.t_s;
    $("replay-time").textContent = "replay " + fmt(s.t_s, 1) + " / " + fmt(s.replay.total_s, 1) + " s";
  }
  $("btn-record").textContent = s.clip ? "Stop recording" : "Record";
  $("btn-record").classList.toggle("armed", Boolean(s.clip));
  const link = s.link || {};
  setBadge("link", link.lost ? "LINK LOST" : "link " + fmt(link.state_age_s, 1) + " s", link.lost ? "bad" : "ok");
  const mine = s.controller === me;
  $("control").textContent = s.controller === null ? "nobody in control"
    : mine ? "you are in control (viewer #" + me + ")" : "viewer #" + s.controller + " in control";
  $("take-control").style.display = s.controller === null || mine ? "none" : "";
  const people = (s.people || []).map((p) => (p.name || p.label) + (p.track !== null ? " #" + p.track : ""));
  const heard = s.heard ? '"' + s.heard.text + '" → ' + (s.heard.command || "not understood" +
    (s.heard.reason ? " (" + s.heard.reason + ")" : "")) : "-";
  const safety = s.safety || {};
  const rows = [
    ["mode", s.mode + (s.flying ? " (flying)" : "")],
    ["battery", fmt(s.battery_pct, 0) + " %"],
    ["height", fmt(s.height_cm, 0) + " cm"],
    ["pose", "x " + fmt(s.pose.x_cm, 0) + " y " + fmt(s.pose.y_cm, 0) + " cm, yaw " + fmt(s.pose.yaw_deg, 0) + "°"],
    ["speed", fmt(s.speed_cm_s, 0) + " cm/s"],
    ["link", "state age " + fmt(link.state_age_s, 2) + " s" + (link.lost ? ", LOST" : "") +
      (link.auto_land_in_s !== undefined ? ", auto-land in " + fmt(link.auto_land_in_s, 0) + " s" : "")],
    ["safety", safety.state + (safety.last ? " · " + safety.last : "") +
      (safety.limits ? " · land at " + safety.limits.land_battery_pct + " %, fence " +
        safety.limits.fence_ceiling_cm + " cm up / " + safety.limits.fence_radius_cm + " cm out" : "")],
    ["heard", heard],
    ["in view", people.length ? people.join(", ") : "nobody"],
    ["following", s.following ? s.following.who + " (" + s.following.state + ")" : "-"],
    ["recording", (s.clip ? "video: " + s.clip : "video off") + (s.recording ? ", flight recorder: " + s.recording
      : "")],
    ["loop", fmt(s.loop_hz, 1) + " Hz" + (s.loop ? " of " + s.loop.hz + ", " + s.loop.overruns + " overruns" : "")],
    ["viewers", String(s.viewers)],
  ];
  const body = $("telemetry").tBodies[0];
  body.replaceChildren(...rows.map(([k, v]) => {
    const tr = document.createElement("tr");
    const th = document.createElement("th"); th.textContent = k;
    const td = document.createElement("td"); td.textContent = v; td.dataset.field = k;
    tr.append(th, td);
    return tr;
  }));
  const names = [...new Set([...(s.people || []).filter((p) => p.name).map((p) => p.name), ...(s.enrolled || [])])];
  const holder = $("follow-names");
  if (holder.dataset.names !== names.join(",")) {
    holder.dataset.names = names.join(",");
    holder.replaceChildren(...names.map((n) => {
      const b = document.createElement("button");
      b.type = "button"; b.textContent = "Follow " + n; b.onclick = () => command("follow " + n);
      return b;
    }));
  }
  const log = [...(s.commands || []).map((c) => [c.t_s, c.command + " [" + c.source + "] " + c.result]),
               ...(s.events || []).map((e) => [e.t_s, e.type + ": " + e.detail])].sort((a, b) => b[0] - a[0]);
  $("log").replaceChildren(...log.slice(0, 12).map(([t, text]) => {
    const li = document.createElement("li"); li.textContent = fmt(t, 1) + " s  " + text; return li;
  }));
  const last = track[track.length - 1];
  if (!last || s.t_s - last[0] >= 0.25) {
    track.push([s.t_s, s.pose.x_cm, s.pose.y_cm, s.pose.z_cm, s.pose.yaw_deg, s.battery_pct]);
    if (track.length > 4800) track.shift();
  }
  drawTopView(); drawPlot();
}

function drawTopView() {
  const c = $("topview"), g = c.getContext("2d"), w = c.width, h = c.height;
  g.clearRect(0, 0, w, h);
  if (!track.length) return;
  let span = 200;  // cm from the centre shown, at least 2 m
  for (const p of track) span = Math.max(span, Math.abs(p[1]) * 1.15, Math.abs(p[2]) * 1.15);
  const k = (w / 2 - 6) / span;
  const sx = (y) => w / 2 - y * k, sy = (x) => h / 2 - x * k;  // x forward = up, y left = left
  g.strokeStyle = "#2c2c2c"; g.lineWidth = 1;
  const step = span > 600 ? 200 : 100;
  for (let v = -Math.floor(span / step) * step; v <= span; v += step) {
    g.beginPath(); g.moveTo(sx(v), 0); g.lineTo(sx(v), h); g.stroke();
    g.beginPath(); g.moveTo(0, sy(v)); g.lineTo(w, sy(v)); g.stroke();
  }
  g.strokeStyle = "#6cf"; g.lineWidth = 2; g.beginPath();
  track.forEach((p, i) => (i ? g.lineTo(sx(p[2]), sy(p[1])) : g.moveTo(sx(p[2]), sy(p[1]))));
  g.stroke();
  const p = track[track.length - 1], yaw = (p[4] * Math.PI) / 180;
  g.fillStyle = "#fc3"; g.beginPath(); g.arc(sx(p[2]), sy(p[1]), 5, 0, 7); g.fill();
  g.strokeStyle = "#fc3"; g.beginPath(); g.moveTo(sx(p[2]), sy(p[1]));
  g.lineTo(sx(p[2] + 18 / k * Math.sin(yaw)), sy(p[1] + 18 / k * Math.cos(yaw))); g.stroke();
  g.fillStyle = "#888"; g.fillText(step / 100 + " m grid", 4, h - 4);
}

function drawPlot() {
  const c = $("plot"), g = c.getContext("2d"), w = c.width, h = c.height;
  g.clearRect(0, 0, w, h);
  if (track.length < 2) return;
  const t1 = track[track.length - 1][0], t0 = Math.max(track[0][0], t1 - 120);
  const maxZ = Math.max(300, ...track.map((p) => p[3]));
  const line = (index, top, colour) => {
    g.strokeStyle = colour; g.beginPath();
    let started = false;
    for (const p of track) {
      if (p[0] < t0) continue;
      const x = ((p[0] - t0) / Math.max(1, t1 - t0)) * (w - 2) + 1, y = h - 2 - (p[index] / top) * (h - 14);
      started ? g.lineTo(x, y) : g.moveTo(x, y); started = true;
    }
    g.stroke();
  };
  line(5, 100, "#5c5"); line(3, maxZ, "#4af");
  const p = track[track.length - 1];
  g.fillStyle = "#5c5"; g.fillText("battery " + fmt(p[5], 0) + "%", 4, 10);
  g.fillStyle = "#4af"; g.fillText("height " + fmt(p[3], 0) + " cm", 110, 10);
}

// -- teleop: keys (as --keys), touch sticks, gamepad; dead-man: renewed every 100 ms while held ------------------
const held = new Set();
const sticks = { left: [0, 0], right: [0, 0] };
let moving = false;
const KEY_AXES = { w: ["x", 1], s: ["x", -1], a: ["y", 1], d: ["y", -1], ArrowUp: ["z", 1], ArrowDown: ["z", -1],
                   ArrowLeft: ["yaw", 1], ArrowRight: ["yaw", -1] };
const KEY_COMMANDS = { t: "takeoff", l: "land", " ": "stop" };

function intent() {
  const v = { x: 0, y: 0, z: 0, yaw: 0 };
  for (const key of held) { const [axis, sign] = KEY_AXES[key]; v[axis] += sign; }
  v.yaw -= sticks.left[0]; v.z -= sticks.left[1]; v.y -= sticks.right[0]; v.x -= sticks.right[1];
  for (const pad of navigator.getGamepads ? navigator.getGamepads() : []) {
    if (!pad || pad.axes.length < 4) continue;
    const dz = (a) => (Math.abs(a) < 0.15 ? 0 : a);
    v.yaw -= dz(pad.axes[0]); v.z -= dz(pad.axes[1]); v.y -= dz(pad.axes[2]); v.x -= dz(pad.axes[3]);
    if (pad.buttons[1] && pad.buttons[1].pressed) command("stop");
  }
  for (const k in v) v[k] = Math.max(-1, Math.min(1, v[k]));
  return v;
}

function teleop() {
  const v = intent();
  const nonzero = v.x || v.y || v.z || v.yaw;
  if (nonzero || moving) send({ type: "teleop", ...v });  // one zero on release stops at once
  moving = Boolean(nonzero);
}
setInterval(teleop, 100);

function typing(event) { return event.target && /^(INPUT|SELECT|TEXTAREA)$/.test(event.target.tagName); }
document.addEventListener("keydown", (event) => {
  if (typing(event) || event.ctrlKey || event.metaKey || event.altKey) return;
  const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
  if (key in KEY_AXES) {
    event.preventDefault();
    if (!held.has(key)) { held.add(key); teleop(); }
  } else if (key in KEY_COMMANDS && !event.repeat) {
    event.preventDefault();
    command(KEY_COMMANDS[key]);
  }
});
document.addEventListener("keyup", (event) => {
  const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
  if (key === " ") event.preventDefault();  // space is STOP: it must never also press the focused button
  if (held.delete(key)) teleop();
});
// A clicked button gives up the focus, so that a key (space = STOP) never presses it again (say, Emergency).
document.addEventListener("click", (event) => {
  if (event.target instanceof HTMLButtonElement) event.target.blur();
});
function releaseAll() { held.clear(); sticks.left = [0, 0]; sticks.right = [0, 0]; teleop(); }
window.addEventListener("blur", releaseAll);
document.addEventListener("visibilitychange", () => { if (document.hidden) releaseAll(); });
window.addEventListener("pagehide", () => { if (ws) ws.close(); });  // the server stops the vehicle

function stick(element, name) {
  const knob = element.querySelector(".knob");
  let id = null;
  const move = (event) => {
    const r = element.getBoundingClientRect(), radius = r.width / 2;
    let dx = (event.clientX - r.left - radius) / radius, dy = (event.clientY - r.top - radius) / radius;
    const n = Math.hypot(dx, dy);
    if (n > 1) { dx /= n; dy /= n; }
    sticks[name] = [dx, dy];
    knob.style.transform = "translate(" + dx * radius * 0.7 + "px," + dy * radius * 0.7 + "px)";
  };
  const end = () => { id = null; sticks[name] = [0, 0]; knob.style.transform = ""; teleop(); };
  element.addEventListener("pointerdown", (e) => { id = e.pointerId; element.setPointerCapture(id); move(e); });
  element.addEventListener("pointermove", (e) => { if (e.pointerId === id) move(e); });
  element.addEventListener("pointerup", end);
  element.addEventListener("pointercancel", end);
}
stick($("stick-left"), "left");
stick($("stick-right"), "right");
if (matchMedia("(pointer: coarse)").matches) document.body.classList.add("sticks");
$("btn-sticks").onclick = () => document.body.classList.toggle("sticks");

// -- buttons ----------------------------------------------------------------------------------------------------
for (const button of document.querySelectorAll("[data-command]")) {
  button.onclick = () => command(button.dataset.command);
}
$("stop").onclick = () => { releaseAll(); command("stop"); };
$("btn-record").onclick = () => send({ type: "record" });
$("take-control").onclick = () => send({ type: "control" });
$("end-run").onclick = () => {
  if (confirm("End the run? The drone lands / the car stops.")) send({ type: "end" });
};
const emergency = $("btn-emergency");
emergency.onclick = () => {
  if (emergency.classList.contains("armed")) {
    clearTimeout(emergency.timer);
    emergency.classList.remove("armed"); emergency.textContent = "Emergency";
    command("emergency");
    return;
  }
  emergency.classList.add("armed");
  emergency.textContent = "Motors OFF now? tap again";
  emergency.timer = setTimeout(() => { emergency.classList.remove("armed"); emergency.textContent = "Emergency"; }, 3000);
};

window.cockpit = { frames: () => frames, state: () => state };  // for tests and the curious
connect();
