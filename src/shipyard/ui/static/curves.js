// Shipyard UI: draws the holdout ROC and precision-recall curves (uPlot) from the JSON blocks
// the run and compare pages carry: one line per class on a run's page, one per run compared.
// A curve's points are not on shared x values (a ROC curve climbs at one false positive
// rate), so each line brings its own x and y: uPlot's mode 2.
// No inline script anywhere: the Content-Security-Policy allows this origin's files only.
(function () {
  "use strict";

  var COLOURS = ["#0b57d0", "#c5221f", "#137333", "#b06000", "#8430ce", "#007b83",
                 "#a50e0e", "#5f6368", "#e37400", "#1967d2"];
  var HEIGHT = 260;

  function widthOf(area) {
    return Math.max(260, Math.floor(area.getBoundingClientRect().width));
  }

  function draw(area) {
    if (area.dataset.drawn === "1" || typeof uPlot === "undefined") {
      return;
    }
    var source = document.getElementById(area.dataset.curves);
    if (!source) {
      return;
    }
    var data = JSON.parse(source.textContent);
    var series = [{}];
    var columns = [null];
    data.series.forEach(function (line, i) {
      series.push({
        label: line.label,
        stroke: COLOURS[i % COLOURS.length],
        width: 2,
        points: { show: false }
      });
      columns.push([line.x, line.y]);
    });
    if (data.kind === "roc") {  // a model that guesses
      series.push({ label: "chance", stroke: "#8c959f", width: 1, dash: [5, 5], points: { show: false } });
      columns.push([[0, 1], [0, 1]]);
    }
    var chart = new uPlot({
      mode: 2,
      width: widthOf(area),
      height: HEIGHT,
      series: series,
      scales: {
        x: { time: false, auto: false, range: [0, 1] },
        y: { auto: false, range: [0, 1.02] }
      },
      axes: [{ label: data.x_label }, { label: data.y_label }],
      legend: { show: true, live: false },
      cursor: { drag: { x: false, y: false } }
    }, columns, area);
    area.dataset.drawn = "1";
    area._curves = chart;
  }

  function drawAll(root) {
    (root || document).querySelectorAll("[data-curves]").forEach(draw);
  }

  function resize() {
    document.querySelectorAll("[data-curves]").forEach(function (area) {
      if (area._curves) {
        area._curves.setSize({ width: widthOf(area), height: HEIGHT });
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () { drawAll(document); });
  var pending = null;
  window.addEventListener("resize", function () {
    clearTimeout(pending);
    pending = setTimeout(resize, 150);
  });
}());
