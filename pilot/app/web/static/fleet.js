// The fleet page: polls /api/fleet, one tile per vehicle, commands through POST /api/command.
"use strict";
const tiles = document.getElementById("tiles");
const message = document.getElementById("message");

async function send(to, text) {
  const reply = await fetch("/api/command", {
    method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify({to, text}),
  });
  const data = await reply.json();
  message.textContent = reply.ok ? `sent ${to}: ${text}` : `error: ${data.error}`;
}

document.getElementById("all-stop").onclick = () => send("all", "stop");
document.getElementById("all-land").onclick = () => send("all", "land");

function number(value, unit, digits) {
  return typeof value === "number" ? `${value.toFixed(digits)}${unit}` : "-";
}

function tileFor(name) {
  let tile = document.getElementById(`tile-${name}`);
  if (tile) return tile;
  tile = document.createElement("section");
  tile.id = `tile-${name}`;
  tile.className = "tile";
  tile.innerHTML = `<h2><span class="name"></span><span class="state"></span></h2><img alt="">
    <dl></dl><form><input placeholder="command, e.g. takeoff"><button type="submit">send</button>
    <button type="button" class="stop">stop</button><button type="button" class="land">land</button></form>`;
  tile.querySelector(".name").textContent = name;
  const input = tile.querySelector("input");
  tile.querySelector("form").onsubmit = (event) => { event.preventDefault(); send(name, input.value); input.value = ""; };
  tile.querySelector("button.stop").onclick = () => send(name, "stop");
  tile.querySelector("button.land").onclick = () => send(name, "land");
  tiles.appendChild(tile);
  return tile;
}

async function refresh() {
  try {
    const reply = await fetch("/api/fleet");
    const fleet = await reply.json();
    document.getElementById("empty")?.remove();
    for (const vehicle of fleet) {
      const t = vehicle.telemetry;
      const tile = tileFor(vehicle.name);
      tile.classList.toggle("lost", !vehicle.alive);
      tile.querySelector(".state").textContent =
        vehicle.clash ? "TWO WITH THIS NAME" : vehicle.alive ? (t.mode || "?") : "LOST";
      const rows = [["kind", t.kind || "?"], ["battery", number(t.battery_pct, " %", 0)],
        ["height", number(t.height_cm, " cm", 0)], ["link", number((t.link || {}).state_age_s, " s", 1)],
        ["age", number(vehicle.age_s, " s", 1)], ["rate", number(vehicle.rate_hz, " Hz", 1)]];
      tile.querySelector("dl").replaceChildren(...rows.flatMap(([k, v]) => {
        const dt = document.createElement("dt"); dt.textContent = k;
        const dd = document.createElement("dd"); dd.textContent = v;
        return [dt, dd];
      }));
      if (vehicle.alive && vehicle.video) tile.querySelector("img").src = `/api/video/${encodeURIComponent(vehicle.name)}?t=${Date.now()}`;
    }
  } catch (error) {
    message.textContent = `ground station unreachable: ${error}`;
  }
}

refresh();
setInterval(refresh, 500);
