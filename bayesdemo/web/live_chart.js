// A plotly chart that stays mounted while its figure changes: each update is a Plotly.react on the same plot,
// so a live redraw costs a diff of the traces, not a new plot (st.plotly_chart remounts on every new figure).
// The server (bayesdemo/page/live_chart.py) sends a chart's whole figure once, then only the points its traces gained
// ("extend", applied to the figure held here; the last point held may be replaced). An update that does not apply
// to the revision held (a plot mounted afresh, an update missed) asks for the whole figure with the `resync`
// trigger, once per revision held. Each message comes as the bytes of its JSON, a whole figure in it as an object.
// Only charts on screen are drawn: one scrolled away (or showing no more than its title at the bottom of the
// screen) keeps its newest figure and draws it, in one frame, when it comes into view, so a fast-moving page
// spends the browser's time on what the class sees.
// plotly.js's basic bundle (bar, pie and scatter traces: all the charts draw), a quarter of the full bundle's size
// (plotly-basic.LICENSE.txt).
const PLOTLY_URL = new URL("./plotly-basic.min.js", import.meta.url).href;
const SHOWN_FRACTION = 0.2; // a chart at least this much on screen is drawn
let plotlyLoading = null;

function loadPlotly() {
  if (window.Plotly) return Promise.resolve(window.Plotly);
  if (!plotlyLoading) {
    plotlyLoading = new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = PLOTLY_URL;
      script.onload = () => resolve(window.Plotly);
      script.onerror = () => {
        plotlyLoading = null; // the next figure tries again
        reject(new Error(`could not load ${PLOTLY_URL}`));
      };
      document.head.appendChild(script);
    });
  }
  return plotlyLoading;
}

const onScreen = new IntersectionObserver(
  (entries) => {
    for (const entry of entries) {
      entry.target.__onScreen = entry.isIntersecting && entry.intersectionRatio >= SHOWN_FRACTION;
      if (entry.target.__onScreen) schedule(entry.target);
    }
  },
  { threshold: [0, SHOWN_FRACTION] },
);

// Draw a plot's newest figure at the next frame: several figures arriving between two frames cost one draw.
function schedule(plot) {
  if (plot.__scheduled) return;
  plot.__scheduled = true;
  requestAnimationFrame(() => {
    plot.__scheduled = false;
    draw(plot);
  });
}

// One draw at a time per plot, of its newest figure, only while it is on screen and differs from the one shown.
async function draw(plot) {
  if (!plot.__onScreen || plot.__drawing || plot.__latest === plot.__shown) return;
  plot.__drawing = true;
  const data = plot.__latest;
  try {
    const Plotly = await loadPlotly();
    const figure = data.figure;
    // Copies: plotly.js writes into the traces and layout it draws, and the figure held must stay as sent.
    const traces = figure.data.map((trace) => ({ ...trace }));
    const layout = structuredClone(figure.layout);
    // The page's own font, as st.plotly_chart's theme uses, where the figure names none.
    layout.font = { family: getComputedStyle(plot).fontFamily, ...layout.font };
    await Plotly.react(plot, traces, layout, data.config);
    plot.__shown = data;
  } catch (error) {
    console.error("bayesdemo live chart:", error);
    plot.__shown = data; // not retried until a new figure comes
  } finally {
    plot.__drawing = false;
  }
  if (plot.__latest !== plot.__shown) schedule(plot); // a newer figure came while drawing
}

const TYPED_ARRAYS = {
  f8: Float64Array,
  f4: Float32Array,
  i4: Int32Array,
  u4: Uint32Array,
  i2: Int16Array,
  u2: Uint16Array,
  i1: Int8Array,
  u1: Uint8Array,
};

// A trace's numbers as an array: plotly's JSON writes a numeric array as {dtype, bdata} (base64, little-endian).
function values(array) {
  if (Array.isArray(array) || array?.bdata === undefined) return array;
  const bytes = Uint8Array.from(atob(array.bdata), (character) => character.charCodeAt(0));
  return Array.from(new TYPED_ARRAYS[array.dtype](bytes.buffer));
}

// Bring the figure held up to `data`'s revision: the whole figure, or the points appended to the revision held.
// The same revision again (a rerun where nothing moved) changes nothing, so nothing is drawn again.
function receive(plot, data, setTriggerValue) {
  const held = plot.__latest;
  if (held?.revision === data.revision) return;
  if (data.figure !== undefined) {
    const figure = typeof data.figure === "string" ? JSON.parse(data.figure) : data.figure;
    plot.__latest = { revision: data.revision, figure, config: data.config };
    plot.__resyncAsked = undefined;
    return;
  }
  if (held?.revision !== data.base) {
    const holding = held?.revision ?? "";
    if (plot.__resyncAsked !== holding) {
      plot.__resyncAsked = holding;
      setTriggerValue("resync", holding);
    }
    return;
  }
  const traces = held.figure.data.slice();
  // [index, x added, y added] or, where the last point held moved, [index, x added, y added, points kept].
  for (const [index, xAdded, yAdded, kept] of data.extend) {
    const trace = traces[index];
    const x = values(trace.x).slice(0, kept);
    const y = values(trace.y).slice(0, kept);
    traces[index] = { ...trace, x: [...x, ...xAdded], y: [...y, ...yAdded] };
  }
  plot.__latest = { revision: data.revision, figure: { data: traces, layout: held.figure.layout }, config: data.config };
}

const utf8 = new TextDecoder();

// A message as sent: the bytes of its JSON (a Uint8Array), or already an object.
function message(data) {
  if (data instanceof Uint8Array || data instanceof ArrayBuffer) return JSON.parse(utf8.decode(data));
  return data;
}

export default function (component) {
  const { parentElement } = component;
  const data = message(component.data);
  let plot = parentElement.querySelector(".bayesdemo-chart");
  if (!plot) {
    plot = document.createElement("div");
    plot.className = "bayesdemo-chart";
    parentElement.appendChild(plot);
  }
  if (!plot.__observed) {
    onScreen.observe(plot);
    plot.__observed = true;
  }
  plot.dataset.chart = data.name;
  plot.style.height = `${data.height}px`;
  receive(plot, data, component.setTriggerValue);
  schedule(plot);
  // No Plotly.purge on unmount: purging while a draw is still settling makes plotly.js throw (its hover and event
  // hooks are gone), and a plot holds no window listeners, so it is collected with its element.
  return () => {
    onScreen.unobserve(plot);
    plot.__observed = false;
  };
}
