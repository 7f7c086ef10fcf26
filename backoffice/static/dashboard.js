// The dashboard's daily chart: progressive enhancement over the "By day" table, which holds the same numbers.
// Drawn with uPlot (served from /admin/static/vendor/, copied from npm at set-up); without it, nothing happens.
(function () {
  "use strict";
  var holder = document.getElementById("daily-chart");
  var source = document.getElementById("daily-data");
  if (!holder || !source || typeof window.uPlot !== "function") return;
  var daily = JSON.parse(source.textContent);
  if (!daily.days.length || !daily.series.length) return;

  var colours = ["#1f5fbf", "#b85c00", "#6b8e23", "#a4161a", "#6a3d9a"];
  var days = daily.days.map(function (day) { return Date.parse(day + "T00:00:00Z") / 1000; });
  // Days as the reader's language writes them ("4 Nov", "4 nov."), in UTC like the statistics.
  var dayFormat = new Intl.DateTimeFormat(document.documentElement.lang || undefined,
    { day: "numeric", month: "short", timeZone: "UTC" });
  function day(ts) { return ts == null ? "--" : dayFormat.format(new Date(ts * 1000)); }
  var series = [{ label: daily.day_label, value: function (u, ts) { return day(ts); } }].concat(daily.series.map(function (line, i) {
    return { label: line.label, stroke: colours[i % colours.length], width: 2, points: { show: days.length < 60 } };
  }));
  var data = [days].concat(daily.series.map(function (line) { return line.values; }));

  function width() { return Math.max(320, holder.parentElement.clientWidth); }

  holder.hidden = false;
  var chart = new window.uPlot({
    width: width(),
    height: 280,
    // Days are UTC days (the statistics' own), whatever the reader's time zone.
    tzDate: function (ts) { return window.uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"); },
    scales: { x: { time: true } },
    axes: [{ values: function (u, splits) { return splits.map(day); } }, { size: 60 }],
    series: series
  }, data, holder);

  var pending = 0;
  window.addEventListener("resize", function () {
    cancelAnimationFrame(pending);
    pending = requestAnimationFrame(function () { chart.setSize({ width: width(), height: 280 }); });
  });
})();
