// A plotly chart that stays mounted while its figure changes: each update is a Plotly.react on the same plot,
// so a live redraw costs a diff of the traces, not a new plot (st.plotly_chart remounts on every new figure).
// Only charts on screen are drawn: one scrolled away (or showing no more than its title at the bottom of the
// screen) keeps its newest figure and draws it, in one frame, when it comes into view, so a fast-moving page
// spends the browser's time on what the class sees.
const PLOTLY_URL = new URL("./plotly.min.js", import.meta.url).href;
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
    const figure = JSON.parse(data.figure);
    // The page's own font, as st.plotly_chart's theme uses, where the figure names none.
    figure.layout.font = { family: getComputedStyle(plot).fontFamily, ...figure.layout.font };
    await Plotly.react(plot, figure.data, figure.layout, data.config);
    plot.__shown = data;
  } catch (error) {
    console.error("bayesdemo live chart:", error);
    plot.__shown = data; // not retried until a new figure comes
  } finally {
    plot.__drawing = false;
  }
  if (plot.__latest !== plot.__shown) schedule(plot); // a newer figure came while drawing
}

export default function (component) {
  const { parentElement, data } = component;
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
  // The same figure again (a rerun where nothing moved) is not drawn again.
  if (plot.__latest?.figure !== data.figure) plot.__latest = data;
  schedule(plot);
  // No Plotly.purge on unmount: purging while a draw is still settling makes plotly.js throw (its hover and event
  // hooks are gone), and a plot holds no window listeners, so it is collected with its element.
  return () => {
    onScreen.unobserve(plot);
    plot.__observed = false;
  };
}
