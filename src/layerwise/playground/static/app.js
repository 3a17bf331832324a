// The layerwise playground page: draws what the server's layerwise runs report and sends
// the controls' changes. All the training happens in Python, in layerwise.
"use strict";

const LEARNING_RATES = [0.00001, 0.0001, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1, 3, 10];
const REG_RATES = [0, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1];
const DROPOUTS = [0, 0.1, 0.2, 0.3, 0.4, 0.5];
const ALL_BATCH = 101; // the batch-size slider's right end: every training point
const NODE = 36, COLUMN = 110, ROW = 46, TOP = 30;

const page = {
  socket: null, options: null, settings: [], runs: [], editing: 0, playing: false,
  points: [], history: [[], []], showTest: false,
};

const $ = (selector, root = document) => root.querySelector(selector);

// ---- colours -------------------------------------------------------------------------------
// orange (negative / class 0) -> white -> blue (positive / class 1), as TensorFlow Playground
function colour(t) { // t in [-1, 1]
  const a = [245, 147, 34], w = [232, 234, 235], b = [8, 119, 189];
  const s = Math.max(-1, Math.min(1, t));
  const [from, k] = s < 0 ? [a, -s] : [b, s];
  return w.map((c, i) => Math.round(c + (from[i] - c) * k));
}

function decode(heat) {
  const raw = atob(heat.bytes), out = new Float32Array(raw.length);
  for (let i = 0; i < raw.length; i++) {
    out[i] = heat.low + (raw.charCodeAt(i) / 255) * (heat.high - heat.low);
  }
  return out;
}

// a heat map; ``centre`` is the value drawn white, ``span`` the distance to full colour
function drawHeat(canvas, heat, centre, span) {
  const values = decode(heat), ctx = canvas.getContext("2d");
  const image = ctx.createImageData(heat.cols, heat.rows);
  for (let i = 0; i < values.length; i++) {
    const [r, g, b] = colour(span > 0 ? (values[i] - centre) / span : 0);
    image.data.set([r, g, b, 255], i * 4);
  }
  const off = document.createElement("canvas");
  off.width = heat.cols; off.height = heat.rows;
  off.getContext("2d").putImageData(image, 0, 0);
  ctx.imageSmoothingEnabled = true;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.drawImage(off, 0, 0, canvas.width, canvas.height);
}

// ---- the connection --------------------------------------------------------------------------
function connect() {
  const token = new URLSearchParams(location.search).get("token");
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const url = `${scheme}://${location.host}/ws${token ? "?token=" + encodeURIComponent(token) : ""}`;
  const socket = new WebSocket(url);
  page.socket = socket;
  socket.onopen = () => { $("#connection").textContent = "connected"; };
  socket.onclose = () => {
    $("#connection").textContent = "disconnected: reload the page";
    showError("The connection to the playground server closed. Reload the page.");
  };
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data);
    const handler = handlers[message.type];
    if (handler) handler(message);
  };
}

function send(message) {
  if (page.socket && page.socket.readyState === WebSocket.OPEN) {
    page.socket.send(JSON.stringify(message));
  }
}

function sendSettings(changes) {
  send({ type: "settings", run: page.editing, settings: changes });
}

let errorTimer = null;
function showError(text) {
  const box = $("#error");
  box.textContent = text;
  box.hidden = false;
  clearTimeout(errorTimer);
  errorTimer = setTimeout(() => { box.hidden = true; }, 10000);
}

const handlers = {
  init(message) {
    page.options = message.options;
    page.settings = message.settings;
    buildControls();
    drawDatasetIcons();
    syncControls();
    send({ type: "activation", name: page.settings[0].activation });
  },
  points(message) {
    page.points[message.run] = message;
  },
  state(message) {
    page.playing = message.playing;
    $("#play").textContent = page.playing ? "❚❚" : "▶";
    $("#play").classList.toggle("playing", page.playing);
    ensureRunViews(message.runs.length);
    message.runs.forEach((run, i) => {
      if (message.full) page.history[i] = [];
      page.history[i].push(...run.history);
      page.settings[i] = run.settings;
      drawRun(i, run);
    });
    $("#epoch").textContent = String(message.runs[0].epoch).padStart(6, "0");
    if (message.full) syncControls();
  },
  error(message) { showError(message.message); },
  code(message) {
    $("#code").textContent = message.code;
    $("#code-dialog").showModal();
  },
  model(message) {
    const bytes = Uint8Array.from(atob(message.data), (c) => c.charCodeAt(0));
    const link = document.createElement("a");
    link.href = URL.createObjectURL(new Blob([bytes], { type: "application/octet-stream" }));
    link.download = message.filename;
    document.body.appendChild(link);
    link.click();
    link.remove();
  },
  activation(message) { drawActivation(message); },
};

// ---- controls ----------------------------------------------------------------------------------
function fillSelect(select, values, label = (v) => String(v)) {
  select.innerHTML = "";
  for (const value of values) {
    const option = document.createElement("option");
    option.value = String(value);
    option.textContent = label(value);
    select.appendChild(option);
  }
}

function buildControls() {
  const o = page.options;
  fillSelect($("#learning_rate"), LEARNING_RATES);
  fillSelect($("#decay"), o.decays, (v) => v.replace("_", " "));
  fillSelect($("#activation"), o.activations);
  fillSelect($("#optimizer"), o.optimizers);
  fillSelect($("#initializer"), o.initializers);
  fillSelect($("#regularization"), o.regularization);
  fillSelect($("#regularization_rate"), REG_RATES);
  fillSelect($("#dropout"), DROPOUTS);
  $("#points").min = o.limits.points[0];
  $("#points").max = o.limits.points[1];
  for (const element of document.querySelectorAll("[data-setting]")) {
    element.onchange = () => {
      const name = element.dataset.setting;
      const value = "number" in element.dataset ? Number(element.value) : element.value;
      sendSettings({ [name]: value });
      if (name === "activation") send({ type: "activation", name: value });
    };
  }
  $("#batch_size").oninput = () => { $("#batch_size-value").textContent = batchLabel(); };
  $("#batch_size").onchange = () => {
    const v = Number($("#batch_size").value);
    sendSettings({ batch_size: v >= ALL_BATCH ? "all" : v });
  };
  for (const id of ["train_fraction", "noise", "points"]) {
    $("#" + id).oninput = () => { $(`#${id}-value`).textContent = $("#" + id).value; };
  }
  const datasets = $("#datasets");
  datasets.innerHTML = "";
  for (const name of o.datasets) {
    const button = document.createElement("button");
    button.id = "dataset-" + name;
    button.title = name;
    button.innerHTML = `<canvas width="44" height="44"></canvas><span>${name}</span>`;
    button.onclick = () => {
      if (name === "upload") { $("#upload").click(); return; }
      sendSettings({ dataset: name });
    };
    datasets.appendChild(button);
  }
  const features = $("#features");
  features.innerHTML = "";
  for (const [name, label] of Object.entries(o.features)) {
    const item = document.createElement("label");
    item.innerHTML = `<input type="checkbox" id="feature-${name}" value="${name}"> ${label}`;
    item.querySelector("input").onchange = () => {
      const chosen = [...features.querySelectorAll("input:checked")].map((i) => i.value);
      if (chosen.length === 0) { showError("Choose at least one feature."); syncControls(); return; }
      sendSettings({ features: chosen });
    };
    features.appendChild(item);
  }
  $("#limits").innerHTML = `<h2>Limits</h2><p class="hint">At most ${o.limits.layers} hidden
    layers of ${o.limits.neurons} neurons, ${o.limits.points[0]}–${o.limits.points[1]} points,
    CSV uploads of ${o.limits.upload_rows} rows.</p>`;
}

function batchLabel() {
  const v = Number($("#batch_size").value);
  return v >= ALL_BATCH ? "all" : String(v);
}

function syncControls() {
  const s = page.settings[page.editing] || page.settings[0];
  if (!s) return;
  for (const element of document.querySelectorAll("[data-setting]")) {
    element.value = String(s[element.dataset.setting]);
  }
  for (const id of ["train_fraction", "noise", "points"]) {
    $(`#${id}-value`).textContent = s[id];
  }
  $("#batch_size").value = s.batch_size === "all" ? ALL_BATCH : Math.min(s.batch_size, 100);
  $("#batch_size-value").textContent = String(s.batch_size);
  for (const input of document.querySelectorAll("#features input")) {
    input.checked = s.features.includes(input.value);
  }
  for (const button of document.querySelectorAll("#datasets button")) {
    button.classList.toggle("selected", button.id === "dataset-" + s.dataset);
  }
}

function wireButtons() {
  $("#play").onclick = () => send({ type: page.playing ? "pause" : "play" });
  $("#step").onclick = () => send({ type: "step" });
  $("#reset").onclick = () => send({ type: "reset" });
  $("#regenerate").onclick = () => send({ type: "regenerate" });
  $("#show-code").onclick = () => send({ type: "code", run: page.editing });
  $("#download").onclick = () => send({ type: "download", run: page.editing });
  $("#copy-code").onclick = () => navigator.clipboard && navigator.clipboard.writeText($("#code").textContent);
  $("#compare").onchange = () => {
    send({ type: "compare", on: $("#compare").checked });
    $("#editing").hidden = !$("#compare").checked;
    if (!$("#compare").checked) setEditing(0);
  };
  for (const radio of document.querySelectorAll("input[name=editing]")) {
    radio.onchange = () => setEditing(Number(radio.value));
  }
  $("#upload").onchange = async () => {
    const file = $("#upload").files[0];
    if (!file) return;
    if (file.size > page.options.limits.message_bytes - 100) {
      showError(`Upload refused: the file has ${file.size} bytes, at most ` +
                `${page.options.limits.message_bytes - 100} are allowed.`);
      return;
    }
    send({ type: "upload", csv: await file.text() });
    $("#upload").value = "";
  };
}

function setEditing(index) {
  page.editing = index;
  for (const radio of document.querySelectorAll("input[name=editing]")) {
    radio.checked = Number(radio.value) === index;
  }
  syncControls();
  send({ type: "activation", name: page.settings[index].activation });
}

// ---- the runs --------------------------------------------------------------------------------------
function ensureRunViews(count) {
  const holder = $("#runs");
  while (holder.children.length > count) holder.lastChild.remove();
  while (holder.children.length < count) {
    const index = holder.children.length;
    const view = $("#run-template").content.firstElementChild.cloneNode(true);
    view.id = "run-" + index;
    view.querySelector(".run-title").textContent = count > 1 || index > 0 ? `Run ${"AB"[index]}` : "";
    view.querySelector(".output-map").id = "output-" + index;
    view.querySelector(".add-layer").onclick = () => changeLayers(index, +1);
    view.querySelector(".remove-layer").onclick = () => changeLayers(index, -1);
    view.querySelector(".show-test").onchange = (e) => { page.showTest = e.target.checked; };
    holder.appendChild(view);
  }
  for (const [i, view] of [...holder.children].entries()) {
    view.querySelector(".run-title").textContent = count > 1 ? `Run ${"AB"[i]}` : "";
  }
}

function changeLayers(index, delta, layer = null) {
  const hidden = [...page.settings[index].hidden];
  const limits = page.options.limits;
  if (layer === null) {
    if (delta > 0 && hidden.length >= limits.layers) { showError(`At most ${limits.layers} hidden layers.`); return; }
    if (delta > 0) hidden.push(hidden.length ? hidden[hidden.length - 1] : 2);
    else if (hidden.length) hidden.pop();
  } else {
    const units = hidden[layer] + delta;
    if (units < 1 || units > limits.neurons) { showError(`A layer has 1 to ${limits.neurons} neurons.`); return; }
    hidden[layer] = units;
  }
  send({ type: "settings", run: index, settings: { hidden } });
}

function drawRun(index, run) {
  const view = $("#run-" + index);
  drawNetwork(view, index, run);
  const last = page.history[index][page.history[index].length - 1] || [0, null, null];
  const fmt = (v) => (v === null || v === undefined ? "–" : v.toFixed(3));
  view.querySelector(".test-loss").textContent = fmt(last[2]);
  view.querySelector(".train-loss").textContent = fmt(last[1]);
  view.querySelector(".test-accuracy").textContent = fmt(run.accuracy.test);
  view.querySelector(".acc").hidden = run.regression;
  view.querySelector(".layer-count").textContent = `${run.settings.hidden.length} hidden layers`;
  drawLossChart(view.querySelector(".loss-chart"), page.history[index]);
  const map = view.querySelector(".output-map");
  drawHeat(map, run.output, run.regression ? 0 : 0.5, run.regression ? 1 : 0.5);
  drawPoints(map, page.points[index], run.regression);
  drawGradients(view.querySelector(".gradient-chart"), run.gradient_norms);
  const dead = run.dead.map((n, i) => `layer ${i + 1}: ${n}`).join(", ");
  view.querySelector(".dead").textContent = run.dead.some((n) => n > 0) ? `Dead units (output 0 on every training point): ${dead}` : "";
  const diverged = view.querySelector(".diverged");
  diverged.hidden = !run.diverged;
  diverged.textContent = run.diverged;
}

function drawPoints(canvas, points, regression) {
  if (!points) return;
  const ctx = canvas.getContext("2d"), size = canvas.width, extent = 6;
  const sets = [[points.train, "#fff"]];
  if (page.showTest) sets.push([points.test, "#000"]);
  for (const [rows, stroke] of sets) {
    for (const [x1, x2, y] of rows) {
      const px = ((x1 + extent) / (2 * extent)) * size, py = ((extent - x2) / (2 * extent)) * size;
      const [r, g, b] = colour(regression ? y : y > 0.5 ? 1 : -1);
      ctx.beginPath();
      ctx.arc(px, py, 3, 0, 2 * Math.PI);
      ctx.fillStyle = `rgb(${r},${g},${b})`;
      ctx.fill();
      ctx.strokeStyle = stroke;
      ctx.stroke();
    }
  }
}

function drawNetwork(view, index, run) {
  const nodes = view.querySelector(".nodes"), svg = view.querySelector("svg.links");
  const labels = page.options.features;
  const sizes = [run.features.length, ...run.weights.map((w) => w[0].length)];
  const tallest = Math.max(...sizes);
  const width = COLUMN * (sizes.length - 1) + NODE + 20, height = TOP + tallest * ROW + 10;
  const key = JSON.stringify(sizes) + run.features.join();
  const position = (layer, unit) => [layer * COLUMN, TOP + unit * ROW];
  if (nodes.dataset.key !== key) { // the structure changed: lay out nodes and buttons again
    nodes.dataset.key = key;
    nodes.innerHTML = "";
    nodes.style.width = width + "px";
    nodes.style.height = height + "px";
    sizes.forEach((count, layer) => {
      for (let unit = 0; unit < count; unit++) {
        const node = document.createElement("div");
        const [x, y] = position(layer, unit);
        node.className = "node" + (layer === 0 ? " input" : "");
        node.style.left = x + "px";
        node.style.top = y + "px";
        if (layer === 0) node.textContent = labels[run.features[unit]];
        else if (layer < sizes.length - 1) node.innerHTML = "<canvas width='17' height='17'></canvas>";
        else node.innerHTML = "<canvas width='17' height='17' class='out-node'></canvas>";
        node.dataset.layer = layer;
        node.dataset.unit = unit;
        nodes.appendChild(node);
      }
      if (layer > 0 && layer < sizes.length - 1) { // +/- neurons of this hidden layer
        const buttons = document.createElement("div");
        buttons.className = "layer-buttons";
        buttons.style.left = layer * COLUMN - 4 + "px";
        buttons.style.top = "0px";
        buttons.innerHTML = "<button title='Add a neuron'>+</button><button title='Remove a neuron'>−</button>";
        const [plus, minus] = buttons.querySelectorAll("button");
        plus.onclick = () => changeLayers(index, +1, layer - 1);
        minus.onclick = () => changeLayers(index, -1, layer - 1);
        nodes.appendChild(buttons);
      }
    });
    svg.setAttribute("width", width);
    svg.setAttribute("height", height);
  }
  // the neurons' heat maps
  run.neurons.forEach((layerMaps, l) => {
    layerMaps.forEach((heat, unit) => {
      const node = nodes.querySelector(`.node[data-layer="${l + 1}"][data-unit="${unit}"]`);
      if (!node) return;
      const span = Math.max(Math.abs(heat.low), Math.abs(heat.high)) || 1;
      drawHeat(node.querySelector("canvas"), heat, 0, span);
      node.classList.toggle("dead-unit", heat.low === 0 && heat.high === 0);
    });
  });
  const outNode = nodes.querySelector(".out-node");
  if (outNode) drawHeat(outNode, run.output, run.regression ? 0 : 0.5, run.regression ? 1 : 0.5);
  // the connections: width by |w|, colour by sign; hover shows the value
  const biggest = Math.max(1e-9, ...run.weights.flat(2).map(Math.abs));
  let paths = "";
  run.weights.forEach((kernel, layer) => {
    kernel.forEach((row, i) => {
      row.forEach((w, j) => {
        const [x1, y1] = position(layer, i), [x2, y2] = position(layer + 1, j);
        const [r, g, b] = colour(w >= 0 ? 1 : -1);
        const stroke = 0.5 + 5 * Math.abs(w) / biggest;
        const ax = x1 + NODE, ay = y1 + NODE / 2, bx = x2, by = y2 + NODE / 2, mx = (ax + bx) / 2;
        paths += `<path class="link" data-weight="${w}" d="M${ax},${ay} C${mx},${ay} ${mx},${by} ${bx},${by}"` +
          ` stroke="rgb(${r},${g},${b})" stroke-width="${stroke.toFixed(2)}" stroke-opacity="0.7">` +
          `<title>weight ${w.toFixed(4)}</title></path>`;
      });
    });
  });
  svg.innerHTML = paths;
}

function drawLossChart(canvas, history) {
  const ctx = canvas.getContext("2d"), w = canvas.width, h = canvas.height;
  ctx.clearRect(0, 0, w, h);
  const values = history.flatMap((r) => [r[1], r[2]]).filter((v) => v !== null);
  if (history.length < 2 || !values.length) return;
  const top = Math.max(...values) || 1, last = history[history.length - 1][0] || 1;
  for (const [column, colourName] of [[1, "#999"], [2, "#000"]]) {
    ctx.beginPath();
    history.forEach((row, i) => {
      if (row[column] === null) return;
      const x = (row[0] / last) * w, y = h - (row[column] / top) * (h - 4);
      if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
    });
    ctx.strokeStyle = colourName;
    ctx.stroke();
  }
}

function drawGradients(canvas, norms) {
  const ctx = canvas.getContext("2d"), w = canvas.width, h = canvas.height;
  ctx.clearRect(0, 0, w, h);
  if (!norms.length) return;
  // log scale from 1e-8 to the largest norm: a vanishing gradient is a short bar
  const logs = norms.map((n) => Math.log10(Math.max(n || 1e-8, 1e-8)));
  const top = Math.max(...logs, -7), bottom = -8, bar = w / norms.length;
  ctx.font = "10px sans-serif";
  logs.forEach((v, i) => {
    const height = ((v - bottom) / (top - bottom)) * (h - 14);
    ctx.fillStyle = "#0877bd";
    ctx.fillRect(i * bar + 4, h - 12 - height, bar - 8, height);
    ctx.fillStyle = "#333";
    ctx.fillText(`${i + 1}: ${(norms[i] || 0).toExponential(1)}`, i * bar + 4, h - 2);
  });
}

function drawActivation(message) {
  const canvas = $("#activation-plot"), ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height;
  ctx.clearRect(0, 0, w, h);
  $("#activation-note").textContent = `${message.name}: f (blue) and f′ (orange). ${message.note}`;
  if (!message.x.length) return;
  const ys = [...message.y, ...message.dy].filter(Number.isFinite);
  const lo = Math.max(Math.min(...ys, -1), -6), hi = Math.min(Math.max(...ys, 1), 6);
  const px = (x) => ((x + 5) / 10) * w, py = (y) => h - ((y - lo) / (hi - lo)) * h;
  ctx.strokeStyle = "#ccc";
  ctx.beginPath(); ctx.moveTo(0, py(0)); ctx.lineTo(w, py(0)); ctx.moveTo(px(0), 0); ctx.lineTo(px(0), h); ctx.stroke();
  for (const [series, colourName] of [[message.y, "#0877bd"], [message.dy, "#f59322"]]) {
    ctx.beginPath();
    series.forEach((y, i) => {
      const x = px(message.x[i]), yy = py(Math.max(lo, Math.min(hi, y)));
      if (i === 0) ctx.moveTo(x, yy); else ctx.lineTo(x, yy);
    });
    ctx.strokeStyle = colourName;
    ctx.lineWidth = 2;
    ctx.stroke();
  }
}

// each data set's icon: a picture of its shape, drawn here (no data needed)
const ICONS = {
  circle: (x, y) => (Math.hypot(x, y) < 0.45 ? 1 : -1),
  xor: (x, y) => (x * y > 0 ? 1 : -1),
  gauss: (x, y) => (Math.hypot(x - 0.35, y - 0.35) < 0.3 ? 1 : Math.hypot(x + 0.35, y + 0.35) < 0.3 ? -1 : 0),
  spiral: (x, y) => {
    const r = Math.hypot(x, y), a = Math.atan2(y, x);
    return Math.sin(a - r * 9) > 0 ? 1 : -1;
  },
  p1p2: (x, y) => (y > 0.5 * x - 0.4 && y < -0.8 * x + 0.5 ? 1 : -1),
  plane: (x, y) => (x + y) / 2,
  bumps: (x, y) => Math.exp(-((x - 0.4) ** 2 + (y - 0.4) ** 2) * 8) - Math.exp(-((x + 0.4) ** 2 + (y + 0.4) ** 2) * 8),
};

function drawDatasetIcons() {
  for (const [name, shape] of Object.entries(ICONS)) {
    const button = $("#dataset-" + name);
    if (!button || button.dataset.drawn) continue;
    button.dataset.drawn = "1";
    const ctx = button.querySelector("canvas").getContext("2d"), image = ctx.createImageData(44, 44);
    for (let i = 0; i < 44; i++) {
      for (let j = 0; j < 44; j++) {
        const [r, g, b] = colour(shape(j / 22 - 1, 1 - i / 22));
        image.data.set([r, g, b, 255], (i * 44 + j) * 4);
      }
    }
    ctx.putImageData(image, 0, 0);
  }
}

wireButtons();
connect();
