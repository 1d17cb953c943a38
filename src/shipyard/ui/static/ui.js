// Shipyard UI: draws the charts (uPlot) from the JSON blocks the pages carry, and keeps the
// serving page's live charts. No inline script anywhere: the Content-Security-Policy allows
// this origin's files only.
(function () {
  "use strict";

  var COLOURS = ["#0b57d0", "#c5221f", "#137333", "#b06000", "#8430ce", "#007b83",
                 "#a50e0e", "#5f6368", "#e37400", "#1967d2"];
  var HEIGHT = 220;

  function utc(ts) {
    return uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC");
  }

  // "#0b57d0" and an opacity as "rgba(11, 87, 208, 0.15)": a band's fill, in a line's colour.
  function tint(hex, alpha) {
    var n = parseInt(hex.slice(1), 16);
    return "rgba(" + [(n >> 16) & 255, (n >> 8) & 255, n & 255, alpha].join(", ") + ")";
  }

  function widthOf(area) {
    return Math.max(260, Math.floor(area.getBoundingClientRect().width));
  }

  function draw(area) {
    if (area.dataset.drawn === "1" || typeof uPlot === "undefined") {
      return;
    }
    var source = document.getElementById(area.dataset.chart);
    if (!source) {
      return;
    }
    var data = JSON.parse(source.textContent);
    var time = data.time === true;
    var series = [{ label: time ? "time (UTC)" : "step" }];
    var columns = [data.x];
    data.series.forEach(function (line, i) {
      var options = {
        label: line.label,
        stroke: COLOURS[(typeof line.colour === "number" ? line.colour : i) % COLOURS.length],
        width: 2,
        spanGaps: true,
        points: { show: data.x.length <= 60 }
      };
      if (line.dash) {
        options.dash = [6, 4];
        options.points = { show: false };
      }
      if (data.percent) {
        options.value = function (u, v) { return v == null ? "-" : (v * 100).toFixed(0) + "%"; };
      }
      series.push(options);
      columns.push(line.values);
    });
    var yAxis = {};
    if (data.ylabel) {
      yAxis.label = data.ylabel;
    }
    if (data.percent) {
      yAxis.values = function (u, ticks) {
        return ticks.map(function (v) { return (v * 100).toFixed(0) + "%"; });
      };
    }
    var options = {
      width: widthOf(area),
      height: HEIGHT,
      series: series,
      scales: { x: { time: time } },
      axes: [time ? {} : { label: "step" }, yAxis],
      legend: { show: true },
      cursor: { drag: { x: true, y: false } }
    };
    if (time) {
      options.tzDate = utc;
    }
    if (Array.isArray(data.bands)) {
      // [upper line, lower line, colour]: the area between two lines (series 0 is x)
      options.bands = data.bands.map(function (band) {
        return {
          series: [band[0] + 1, band[1] + 1],
          fill: tint(COLOURS[band[2] % COLOURS.length], 0.15)
        };
      });
    }
    area._chart = new uPlot(options, columns, area);
    area.dataset.drawn = "1";
  }

  function drawAll(root) {
    (root || document).querySelectorAll("[data-chart]").forEach(draw);
  }

  // -- the serving page: points arrive with each polled fragment ---------------------------

  var MAX_POINTS = 120;
  var live = { t: [], rps: [], p50: [], p99: [] };
  var liveCharts = {};

  function liveChart(area, kind) {
    var series = [{ label: "time (UTC)" }];
    var columns = [live.t];
    if (kind === "rps") {
      series.push({ label: "requests/s", stroke: COLOURS[0], width: 2, spanGaps: true });
      columns.push(live.rps);
    } else {
      series.push({ label: "p50 ms", stroke: COLOURS[0], width: 2, spanGaps: true });
      series.push({ label: "p99 ms", stroke: COLOURS[1], width: 2, spanGaps: true });
      columns.push(live.p50, live.p99);
    }
    var chart = new uPlot({
      width: widthOf(area),
      height: HEIGHT,
      series: series,
      scales: { x: { time: true }, y: { range: function (u, min, max) { return [0, Math.max(max || 0, kind === "rps" ? 1 : 10)]; } } },
      axes: [{}, {}],
      tzDate: utc,
      legend: { show: true }
    }, columns, area);
    area.dataset.drawn = "1";
    area._chart = chart;
    return chart;
  }

  function addPoint(root) {
    var source = root.querySelector(".live-point");
    if (!source || typeof uPlot === "undefined") {
      return;
    }
    var point = JSON.parse(source.dataset.point);
    if (live.t.length && live.t[live.t.length - 1] >= point.t) {
      return;
    }
    live.t.push(point.t);
    live.rps.push(point.rps);
    live.p50.push(point.p50);
    live.p99.push(point.p99);
    if (live.t.length > MAX_POINTS) {
      ["t", "rps", "p50", "p99"].forEach(function (key) { live[key].shift(); });
    }
    document.querySelectorAll("[data-live-chart]").forEach(function (area) {
      var kind = area.dataset.liveChart;
      if (!liveCharts[kind]) {
        liveCharts[kind] = liveChart(area, kind);
        return;
      }
      var columns = kind === "rps" ? [live.t, live.rps] : [live.t, live.p50, live.p99];
      liveCharts[kind].setData(columns);
    });
  }

  var paused = false;

  function setUpPause() {
    var button = document.getElementById("live-pause");
    if (!button) {
      return;
    }
    button.addEventListener("click", function () {
      paused = !paused;
      button.setAttribute("aria-pressed", paused ? "true" : "false");
      button.textContent = paused ? "Resume updates" : "Pause updates";
    });
  }

  document.addEventListener("htmx:beforeRequest", function (event) {
    if (paused && event.target && event.target.id === "live") {
      event.preventDefault();
    }
  });

  function resize() {
    document.querySelectorAll("[data-chart], [data-live-chart]").forEach(function (area) {
      if (area._chart) {
        area._chart.setSize({ width: widthOf(area), height: HEIGHT });
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    drawAll(document);
    setUpPause();
  });
  document.addEventListener("htmx:afterSettle", function (event) {
    drawAll(event.target);
    if (event.target && event.target.id === "live") {
      addPoint(event.target);
    }
  });
  var pending = null;
  window.addEventListener("resize", function () {
    clearTimeout(pending);
    pending = setTimeout(resize, 150);
  });
}());
