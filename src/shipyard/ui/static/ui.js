// Shipyard UI: draws the metric charts (uPlot) from the JSON blocks the pages carry.
// No inline script anywhere: the Content-Security-Policy allows this origin's files only.
(function () {
  "use strict";

  var COLOURS = ["#0b57d0", "#c5221f", "#137333", "#b06000", "#8430ce", "#007b83",
                 "#a50e0e", "#5f6368", "#e37400", "#1967d2"];

  function draw(area) {
    if (area.dataset.drawn === "1" || typeof uPlot === "undefined") {
      return;
    }
    var source = document.getElementById(area.dataset.chart);
    if (!source) {
      return;
    }
    var data = JSON.parse(source.textContent);
    var series = [{ label: "step" }];
    var columns = [data.x];
    data.series.forEach(function (line, i) {
      series.push({
        label: line.label,
        stroke: COLOURS[i % COLOURS.length],
        width: 2,
        spanGaps: true,
        points: { show: data.x.length <= 60 }
      });
      columns.push(line.values);
    });
    var width = Math.max(260, Math.floor(area.getBoundingClientRect().width));
    var chart = new uPlot({
      width: width,
      height: 220,
      series: series,
      scales: { x: { time: false } },
      axes: [{ label: "step" }, {}],
      legend: { show: true },
      cursor: { drag: { x: true, y: false } }
    }, columns, area);
    area.dataset.drawn = "1";
    area._chart = chart;
  }

  function drawAll(root) {
    (root || document).querySelectorAll("[data-chart]").forEach(draw);
  }

  function resize() {
    document.querySelectorAll("[data-chart]").forEach(function (area) {
      if (area._chart) {
        var width = Math.max(260, Math.floor(area.getBoundingClientRect().width));
        area._chart.setSize({ width: width, height: 220 });
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () { drawAll(document); });
  document.addEventListener("htmx:afterSettle", function (event) { drawAll(event.target); });
  var pending = null;
  window.addEventListener("resize", function () {
    clearTimeout(pending);
    pending = setTimeout(resize, 150);
  });
}());
