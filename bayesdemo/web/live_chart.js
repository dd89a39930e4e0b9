// A plotly chart that stays mounted while its figure changes: each update is a Plotly.react on the same plot,
// so a live redraw costs a diff of the traces, not a new plot (st.plotly_chart remounts on every new figure).
const PLOTLY_URL = new URL("./plotly.min.js", import.meta.url).href;
let plotlyLoading = null;

function loadPlotly() {
  if (window.Plotly) return Promise.resolve(window.Plotly);
  if (!plotlyLoading) {
    plotlyLoading = new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = PLOTLY_URL;
      script.onload = () => resolve(window.Plotly);
      script.onerror = () => reject(new Error(`could not load ${PLOTLY_URL}`));
      document.head.appendChild(script);
    });
  }
  return plotlyLoading;
}

export default function (component) {
  const { parentElement, data } = component;
  let plot = parentElement.querySelector(".bayesdemo-chart");
  if (!plot) {
    plot = document.createElement("div");
    plot.className = "bayesdemo-chart";
    parentElement.appendChild(plot);
  }
  plot.dataset.chart = data.name;
  const figure = JSON.parse(data.figure);
  plot.style.height = `${figure.layout.height}px`;
  plot.__latest = figure;
  loadPlotly().then((Plotly) => {
    if (plot.__latest !== figure) return; // a newer figure arrived while Plotly loaded: it draws instead
    return Plotly.react(plot, figure.data, figure.layout, data.config);
  });
  return () => {
    if (window.Plotly) window.Plotly.purge(plot);
  };
}
